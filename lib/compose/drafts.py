"""Named Compose drafts kept in <data_dir>/drafts.json, written atomically."""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lib.common.atomic import write_atomically
from lib.compose.form import FORM_DEFAULTS, default_form

log = logging.getLogger(__name__)


DRAFTS_FILE = "drafts.json"


class DraftStore:
    """Named form drafts in `<data_dir>/drafts.json`, written atomically."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / DRAFTS_FILE

    def all(self) -> dict[str, dict[str, Any]]:
        """Every draft by name; a broken file reads as empty (and is logged)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("drafts file %s unreadable: %s", self.path, exc)
            return {}
        return {k: v for k, v in data.get("drafts", {}).items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def names(self) -> list[str]:
        """Draft names, newest first."""
        drafts = self.all()
        return sorted(drafts, key=lambda n: drafts[n].get("saved_at", ""), reverse=True)

    def save(self, name: str, form: Mapping[str, Any]) -> str:
        """Save (or overwrite) a draft; returns the cleaned name. Raises ValueError for an empty name."""
        name = " ".join(name.split())[:60]
        if not name:
            raise ValueError("Give the draft a name, e.g. 'beach run v2'.")
        drafts = self.all()
        fields = {k: copy.deepcopy(form[k]) for k in FORM_DEFAULTS if k in form}
        drafts[name] = {"saved_at": datetime.now(UTC).isoformat(timespec="seconds"), "form": fields}
        self._write(drafts)
        return name

    def load(self, name: str) -> dict[str, Any]:
        """A draft's form fields (defaults filled in); KeyError when there is no such draft."""
        saved = self.all()[name].get("form", {})
        form = default_form()
        form.update({k: v for k, v in saved.items() if k in FORM_DEFAULTS})
        return form

    def delete(self, name: str) -> None:
        """Remove a draft (no error when it is already gone)."""
        drafts = self.all()
        if drafts.pop(name, None) is not None:
            self._write(drafts)

    def _write(self, drafts: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"version": 1, "drafts": drafts}, indent=2, ensure_ascii=False).encode("utf-8")
        write_atomically(self.path, body)
