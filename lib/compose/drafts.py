"""Named Compose drafts kept in <data_dir>/drafts.json, written atomically."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from lib.common.atomic import write_atomically
from lib.compose.form import FORM_DEFAULTS, default_form

log = logging.getLogger(__name__)


DRAFTS_FILE = "drafts.json"
FORMS_FILE = "compose_forms.json"  # the form behind each Compose address (?form=<id>), so F5 and shared links work
FORMS_KEPT = 500  # the newest form records kept; older addresses then open an empty form with a note
FORM_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,40}")


def new_form_id() -> str:
    """An unguessable id for a Compose address (it names a form record, never a key)."""
    return secrets.token_urlsafe(9)


def valid_form_id(value: object) -> bool:
    """Whether a ?form= value from the address bar can name a form record."""
    return isinstance(value, str) and FORM_ID_RE.fullmatch(value) is not None


class DraftStore:
    """Named form drafts in `<data_dir>/drafts.json`, written atomically."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / DRAFTS_FILE
        self.forms_path = Path(data_dir) / FORMS_FILE

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

    # the form behind a Compose address -------------------------------------------------------------
    def _forms(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.forms_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("forms file %s unreadable: %s", self.forms_path, exc)
            return {}
        forms = data.get("forms", {}) if isinstance(data, dict) else {}
        return {k: v for k, v in forms.items() if isinstance(v, dict)} if isinstance(forms, dict) else {}

    def save_form(self, form_id: str, form: Mapping[str, Any]) -> None:
        """Keep the form an address names (only FORM_DEFAULTS fields: no key is ever part of a form)."""
        if not valid_form_id(form_id):
            raise ValueError("not a form id")
        fields = {k: copy.deepcopy(form[k]) for k in FORM_DEFAULTS if k in form}
        self.forms_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.forms_path) + ".lock", timeout=10):
            forms = self._forms()
            forms[form_id] = {"saved_at": datetime.now(UTC).isoformat(timespec="microseconds"), "form": fields}
            newest = sorted(forms, key=lambda k: str(forms[k].get("saved_at", "")), reverse=True)[:FORMS_KEPT]
            body = json.dumps({"version": 1, "forms": {k: forms[k] for k in newest}}, ensure_ascii=False)
            write_atomically(self.forms_path, body.encode("utf-8"))

    def load_form(self, form_id: str) -> dict[str, Any] | None:
        """The form an address names (defaults filled in), or None for an unknown or malformed id."""
        if not valid_form_id(form_id):
            return None
        saved = self._forms().get(form_id)
        if saved is None or not isinstance(saved.get("form"), dict):
            return None
        form = default_form()
        form.update({k: v for k, v in saved["form"].items() if k in FORM_DEFAULTS and fits_form_field(FORM_DEFAULTS[k], v)})
        return form


def fits_form_field(default: object, value: object) -> bool:
    """A stored field of the kind the form expects (a hand-edited file must not break the page)."""
    if default is None:
        return value is None or isinstance(value, dict)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, type(default))
