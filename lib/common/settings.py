"""Settings from the environment, Streamlit secrets or the session: the API key, base URLs and data folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_BASE = "https://api.kie.ai"
DEFAULT_UPLOAD_BASE = "https://kieai.redpandaai.co"
DEFAULT_DATA_DIR = "./data"


@dataclass(frozen=True)
class Settings:
    """Resolved settings; `api_key` is None in sandbox mode. The key is kept out of repr()."""

    api_key: str | None = field(repr=False)
    api_base: str = DEFAULT_API_BASE
    upload_base: str = DEFAULT_UPLOAD_BASE
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    key_source: str = "none"

    @property
    def sandbox(self) -> bool:
        """True when no key is configured: the app talks to the offline sandbox."""
        return not self.api_key

def _clean(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def load_settings(
    secrets: Mapping[str, object] | None = None,
    session_key: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings: a key typed in this browser session wins, then the environment, then secrets."""
    env = os.environ if environ is None else environ
    secrets = secrets or {}
    key, source = _clean(session_key), "session"
    if not key:
        key, source = _clean(env.get("KIE_API_KEY")), "environment"
    if not key:
        key, source = _clean(secrets.get("KIE_API_KEY")), "secrets"
    if not key:
        source = "none"

    def pick(name: str, default: str) -> str:
        return _clean(env.get(name)) or _clean(secrets.get(name)) or default

    return Settings(
        api_key=key,
        api_base=pick("KIE_API_BASE", DEFAULT_API_BASE).rstrip("/"),
        upload_base=pick("KIE_UPLOAD_BASE", DEFAULT_UPLOAD_BASE).rstrip("/"),
        data_dir=Path(pick("KLING_STUDIO_DATA", DEFAULT_DATA_DIR)).expanduser(),
        key_source=source,
    )
