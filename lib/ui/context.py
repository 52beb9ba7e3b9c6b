"""What every page needs: the AppContext (settings, this session's client, storage, sandbox) and its getters."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

import streamlit as st

from lib.common.settings import Settings
from lib.elements.model import Uploader
from lib.history.query import query_page
from lib.history.row import HistoryRow, visible_to
from lib.kie.client import KieClient
from lib.kie.errors import KieError
from lib.kie.models import UploadedFile
from lib.kie.uploads import upload_file
from lib.sandbox.server import SandboxServer
from lib.sandbox.shared import shared_sandbox
from lib.storage.base import LedgerStore, LibraryStore, Storage
from lib.storage.open import open_storage
from lib.tasks.submit import RateLimiter

if TYPE_CHECKING:  # SQLAlchemy loads only in team mode
    from sqlalchemy.engine import Engine

    from lib.tasks.leases import SharedRateLimiter
from lib.trust.fetch import operator_private_origins

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class AppContext:
    """What every page needs: settings, this session's client, where data is kept, and the sandbox (sandbox mode)."""

    settings: Settings
    client: KieClient
    sandbox: SandboxServer | None
    storage: Storage

    @property
    def origin(self) -> str:
        """'sandbox' or 'live', as stored in history."""
        return "sandbox" if self.settings.sandbox else "live"

    @property
    def account(self) -> str:
        """Whose live rows this session may see: a fingerprint of its key ('' in sandbox mode)."""
        return "" if self.settings.sandbox else self.client.account


def read_secrets() -> dict[str, Any]:
    """st.secrets as a dict; empty when no secrets.toml exists (st.secrets raises then)."""
    try:
        return {k: st.secrets[k] for k in st.secrets}
    except Exception:  # StreamlitSecretNotFoundError and parse errors alike
        return {}


@st.cache_resource(show_spinner="Starting the offline sandbox…")
def _sandbox_for(data_dir: str) -> SandboxServer:
    """The sandbox of this data folder, shared with the server's follower (it holds no key, so sharing is safe)."""
    return shared_sandbox(data_dir)


def get_sandbox(settings: Settings) -> SandboxServer:
    """The running sandbox for this data folder (started on first use)."""
    return _sandbox_for(str(settings.data_dir.resolve()))


def _client_for(settings: Settings, sandbox: SandboxServer | None) -> KieClient:
    """This session's client, rebuilt only when the key or the base URLs change. Lives in session state."""
    if sandbox is not None:
        key, api_base, upload_base = "sandbox-demo", sandbox.base_url, sandbox.base_url
    else:
        key, api_base, upload_base = settings.api_key or "", settings.api_base, settings.upload_base
    fingerprint = hashlib.sha256(f"{key}|{api_base}|{upload_base}".encode()).hexdigest()
    cached = st.session_state.get("_settings_client")
    if cached and cached[0] == fingerprint:
        return cached[1]
    client = KieClient(key, api_base, upload_base)
    st.session_state["_settings_client"] = (fingerprint, client)
    st.session_state["settings_balance"] = None
    return client






def refresh_balance(ctx: AppContext) -> None:
    """Read the balance again (after a submit); errors are kept to show, never raised."""
    try:
        # short timeouts: a dead network must not hold every page's sidebar for long
        st.session_state["settings_balance"] = ctx.client.get_credits(timeout=(2, 5))
        st.session_state["settings_balance_error"] = ""
    except KieError as exc:
        st.session_state["settings_balance_error"] = exc.user_message()


def current_balance(ctx: AppContext) -> Decimal | None:
    """The last known balance, read once per session when missing."""
    if st.session_state.get("settings_balance") is None and not st.session_state.get("settings_balance_error"):
        refresh_balance(ctx)
    return st.session_state.get("settings_balance")












def storage_for(settings: Settings) -> Storage:
    """Where this server keeps data — the data folder, or team storage (KLING_STUDIO_DATABASE_URL /
    KLING_STUDIO_MEDIA_URL) — shared by every session and the server's follower (it holds no key)."""
    return open_storage(settings)


def get_ledger(ctx: AppContext) -> LedgerStore:
    """The history ledger (shared)."""
    return ctx.storage.ledger


@st.cache_resource(show_spinner=False, max_entries=8)
def _ledger_view(data_dir: str, version: tuple[int, ...], account: str,
                 _storage: Storage) -> tuple[tuple[HistoryRow, ...], tuple[HistoryRow, ...]]:
    """(unfinished rows, 20 newest rows) one account may see, for one version of the ledger: reruns on an
    unchanged ledger neither walk nor sort 10,000 rows, and a SQL ledger answers both with indexed queries.
    Rows are frozen, so sharing them is safe."""
    ledger = _storage.ledger
    unfinished = tuple(r for r in ledger.unfinished() if visible_to(r, account))
    return unfinished, tuple(query_page(ledger, limit=20, account=account).rows)  # SQL: no whole-ledger read


def ledger_view(ctx: AppContext) -> tuple[tuple[HistoryRow, ...], tuple[HistoryRow, ...]]:
    """(unfinished rows, 20 newest rows) this session may see, memoised on the ledger's version."""
    return _ledger_view(str(ctx.settings.data_dir.resolve()), ctx.storage.ledger.version(), ctx.account,
                        ctx.storage)


def unfinished_rows(ctx: AppContext) -> tuple[HistoryRow, ...]:
    """Unfinished rows (queued, running, unknown) of every origin, memoised on the ledger's version."""
    return ledger_view(ctx)[0]


def service_now(ctx: AppContext) -> datetime:
    """'Now' as the file host sees it: the sandbox's own clock (which tests and demos can advance) or real UTC."""
    if ctx.sandbox is not None:
        return datetime.fromtimestamp(ctx.sandbox.backend.now(), UTC)
    return datetime.now(UTC)


def get_library(ctx: AppContext) -> LibraryStore:
    """The element library (shared: no key in it; it re-reads its file only on change)."""
    return ctx.storage.library


def get_uploader(ctx: AppContext) -> Uploader:
    """upload_file bound to this session's client: uploader(source, file_name, upload_path, method)."""
    def uploader(source: IO[bytes] | str, file_name: str, upload_path: str, method: str = "auto") -> UploadedFile:
        return upload_file(ctx.client, source, file_name=file_name, upload_path=upload_path, method=method)

    return uploader


def allow_private_results(ctx: AppContext) -> tuple[str, ...]:
    """The origins a server-side fetch may reach although they are private: the sandbox's own address in
    sandbox mode, or the KIE_API_BASE / KIE_UPLOAD_BASE the operator pointed at a local gateway. Nothing else."""
    if ctx.sandbox is not None:
        return (ctx.sandbox.base_url,)
    return operator_private_origins(ctx.settings.api_base, ctx.settings.upload_base)


@st.cache_resource(show_spinner=False)
def _rate_limiter_for(account: str) -> RateLimiter:
    return RateLimiter()


@st.cache_resource(show_spinner=False)
def _shared_limiter_for(account: str, _engine: Engine) -> SharedRateLimiter:
    from lib.tasks.leases import SharedRateLimiter

    return SharedRateLimiter(_engine, account)


def get_rate_limiter(ctx: AppContext) -> RateLimiter | SharedRateLimiter:
    """KIE's 20-creates-per-10-s limit is per account, so every session with the same key shares one limiter —
    in team mode counted in the database, so every server shares it too. Keyed by the key's one-way fingerprint:
    the key itself is never cached."""
    account = f"{ctx.client.account}|{ctx.client.api_base}"
    engine = getattr(ctx.storage.ledger, "engine", None)  # the SQL ledger's; the CSV ledger has none
    if engine is not None:
        return _shared_limiter_for(account, engine)
    return _rate_limiter_for(account)










