"""What runs once per server process: the shared sandbox (sandbox mode), storage, the follower and the
callback receiver. streamlit_app.py starts it from st.App's lifespan; pages never drive polling themselves."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lib.batch.background import resume_unfinished, server_senders
from lib.common.settings import Settings, load_settings
from lib.history.row import HistoryRow
from lib.kie.client import KieClient
from lib.sandbox.server import SandboxServer
from lib.sandbox.shared import shared_sandbox
from lib.storage.base import Storage
from lib.storage.open import open_storage, storage_choice
from lib.tasks.callbacks import CallbackReceiver, public_url, webhook_key
from lib.tasks.worker import Follower
from lib.trust.fetch import Allowance, operator_private_origins

if TYPE_CHECKING:
    from lib.tasks.leases import LeaseClaimer

log = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox-demo"  # the sandbox accepts any key; this one is no secret


@dataclass
class Services:
    """The server's long-lived parts."""

    settings: Settings
    storage: Storage
    sandbox: SandboxServer | None
    follower: Follower
    receiver: CallbackReceiver

    def stop(self) -> None:
        """Stop following (the sandbox and storage stay for the process)."""
        self.follower.stop()


_current: Services | None = None


def current() -> Services | None:
    """The services of this process when its startup code ran (None under AppTest and in plain scripts)."""
    return _current


def sandbox_client(sandbox: SandboxServer) -> KieClient:
    """A client for the sandbox (it holds no secret)."""
    return KieClient(SANDBOX_KEY, sandbox.base_url, sandbox.base_url)


def _client_for(settings: Settings, sandbox: SandboxServer | None) -> tuple[KieClient | None, KieClient | None]:
    """(sandbox client, live client with the server's own key): the two kinds of task the server can follow."""
    live = KieClient(settings.api_key, settings.api_base, settings.upload_base) if settings.api_key else None
    return (sandbox_client(sandbox) if sandbox is not None else None), live


def server_allowance(settings: Settings, sandbox: SandboxServer | None) -> Allowance:
    """The origins the server may fetch results from although private: the sandbox's own, or a local gateway
    the operator configured as KIE_API_BASE / KIE_UPLOAD_BASE."""
    if sandbox is not None:
        return (sandbox.base_url,)
    return operator_private_origins(settings.api_base, settings.upload_base)


def _lease_claimer(secrets: Mapping[str, object] | None) -> LeaseClaimer | None:
    """Team mode: this server's leases in the shared database, so each task is followed by one server."""
    url = storage_choice(secrets).database_url
    if url is None:
        return None
    from lib.storage.sql import shared_engine  # SQLAlchemy loads only in team mode
    from lib.tasks.leases import LeaseClaimer

    return LeaseClaimer(shared_engine(url))


def start_services(secrets: Mapping[str, object] | None = None) -> Services:
    """Start what the server runs once: sandbox (no key configured), follower, callback receiver."""
    global _current
    if _current is not None:
        return _current
    settings = load_settings(secrets, None)  # the server's own key only: never one typed in a browser
    storage = open_storage(secrets)  # the data folder, exactly as before, unless team mode is configured
    if warm := getattr(storage.ledger, "warm", None):  # PostgreSQL: History's first row check, done in the background
        warm()
    sandbox = shared_sandbox(settings.data_dir) if settings.sandbox else None
    if sandbox is not None and public_url() is not None:  # the offline KIE calls back like KIE does
        parts = urlsplit(str(public_url()))
        sandbox.backend.configure(callback_origins=f"{parts.scheme}://{parts.netloc}",
                                  webhook_key=webhook_key() or "")
    sandbox_kie, live_kie = _client_for(settings, sandbox)
    live_account = live_kie.account if live_kie is not None else None

    def client_for(row: HistoryRow) -> KieClient | None:
        if row.origin == "sandbox":
            return sandbox_kie
        return live_kie if live_kie is not None and row.account == live_account else None

    follower = Follower(storage, client_for, server_allowance(settings, sandbox),
                        callbacks_on=public_url() is not None, claimer=_lease_claimer(secrets)).start()
    receiver = CallbackReceiver(storage.ledger, follower, webhook_key())
    resume_unfinished(settings.data_dir, server_senders(storage.ledger, storage.library, sandbox_kie, live_kie,
                                                        public_url()))  # batches left running (issue 21)
    _current = Services(settings, storage, sandbox, follower, receiver)
    log.info("Kling Studio services started (data %s, %s mode, pid %d)", settings.data_dir,
             "sandbox" if settings.sandbox else "live", os.getpid())
    return _current


def callback_base(key_source: str) -> str | None:
    """Where KIE should send this session's callbacks: this server's KLING_PUBLIC_URL, when this server can
    confirm them (sandbox tasks, or tasks made with the server's own key), else None (polling only)."""
    if _current is None or key_source == "session":
        return None
    return public_url()


def stop_services() -> None:
    """Stop the follower (at server shutdown)."""
    global _current
    if _current is not None:
        _current.stop()
        _current = None
