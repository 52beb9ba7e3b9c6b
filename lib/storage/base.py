"""The interfaces the rest of the app uses for its data: ledger, element library, drafts and media files."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lib.elements.copies import Fetcher
    from lib.elements.model import Element, ElementMedia, FileInput, ImportResult, Uploader, UploadStatus
    from lib.history.ledger import MergeResult
    from lib.history.query import HistoryOverview, HistoryPage
    from lib.history.row import HistoryRow
    from lib.history.transfer import ImportReport
    from lib.history.view import HistoryFilter


class LedgerStore(Protocol):
    """Every job ever submitted: rows keyed by task id; a created task is recorded before anything else."""

    def version(self) -> tuple[int, ...]:
        """Changes whenever any row changes: a cache key for views of the ledger."""

    def rows(self) -> list[HistoryRow]:
        """Every readable row, oldest first."""

    def unfinished(self) -> list[HistoryRow]:
        """Rows still queued, running or unknown."""

    def unreadable(self) -> list[tuple[int, str]]:
        """(position, reason) of stored rows that cannot be read; they are kept untouched."""

    def get(self, task_id: str) -> HistoryRow | None:
        """The row for `task_id`, or None."""

    def append(self, row: HistoryRow) -> HistoryRow:
        """Record a new task; raises DuplicateTaskError when the id is already recorded."""

    def update(self, task_id: str, /, **fields: Any) -> HistoryRow:
        """Change fields of one row; raises UnknownTaskError when there is none."""

    def delete(self, task_ids: Collection[str]) -> int:
        """Remove rows; returns how many were removed."""

    def merge(self, report: ImportReport) -> MergeResult:
        """Add imported rows whose task id is not yet recorded; never changes existing rows."""

    def query(self, flt: HistoryFilter, sort_by: str = "Created", descending: bool = True, offset: int = 0,
              limit: int = 50, *, account: str | None = None) -> HistoryPage:
        """(rows on the page, rows matching in all) for History: rows `account` may see (None: all) passing `flt`,
        in hv.sort_rows' order, without loading every row per call (call it through lib.history.query.query_page,
        which also serves a ledger that lacks it)."""

    def overview(self, account: str | None = None) -> HistoryOverview:
        """Runs `account` sees, live runs hidden from it, and the filter choices (modes, elements)."""


class LibraryStore(Protocol):
    """The element library: records plus the originals of their files."""

    def version(self) -> object:
        """Changes whenever any element changes (on any server in team mode): a cache key for views."""
    def list(self) -> list[Element]: ...
    def get(self, element_id: str) -> Element | None: ...
    def by_name(self, name: str) -> Element | None: ...
    def check_name(self, name: str, exclude_id: str | None = None) -> list[str]: ...
    def status(self, element: Element, now: datetime | None = None) -> UploadStatus: ...
    def local_file(self, media: ElementMedia) -> Path | None: ...
    def create(self, name: str, description: str, files: Iterable[FileInput] = (), urls: Iterable[str] = (),
               now: datetime | None = None, fetch: Fetcher | None = None) -> Element: ...
    def update(self, element_id: str, **changes: Any) -> Element: ...
    def duplicate(self, element_id: str, now: datetime | None = None) -> Element: ...
    def delete(self, element_id: str) -> None: ...
    def upload(self, element_id: str, uploader: Uploader, method: str = "auto",
               now: datetime | None = None) -> Element: ...
    def ensure_fresh(self, names: Iterable[str], uploader: Uploader, now: datetime | None = None,
                     method: str = "auto", is_alive: Callable[[str], bool] | None = None) -> list[Element]: ...
    def export_json(self) -> str: ...
    def import_json(self, text: str | bytes, now: datetime | None = None, on_clash: Mapping[str, str] | None = None,
                    only: Collection[str] | None = None) -> ImportResult: ...
    def export_bundle(self) -> bytes: ...
    def import_bundle(self, data: bytes, now: datetime | None = None, on_clash: Mapping[str, str] | None = None,
                      only: Collection[str] | None = None) -> ImportResult: ...


class DraftsStore(Protocol):
    """Named Compose drafts."""

    def names(self) -> list[str]: ...
    def save(self, name: str, form: Mapping[str, Any]) -> str: ...
    def load(self, name: str) -> dict[str, Any]: ...
    def delete(self, name: str) -> None: ...
    def save_form(self, form_id: str, form: Mapping[str, Any]) -> None: ...
    def load_form(self, form_id: str) -> dict[str, Any] | None: ...


class MediaStore(Protocol):
    """Archived result videos, found by task id (never by a path a row names)."""

    def staging_dir(self) -> Path:
        """A local folder a download may be written into before `put_video`."""

    def put_video(self, task_id: str, path: Path) -> None:
        """Keep the downloaded video of `task_id` (moved from `path`)."""

    def video(self, task_id: str) -> Path | None:
        """A local file that plays the archived video of `task_id`, or None when there is none."""

    def delete_video(self, task_id: str) -> bool:
        """Remove the archived video of `task_id` (and its thumbnail); True when one was removed."""

    def thumbnail(self, task_id: str) -> Path | None:
        """A local JPEG (about 160 px on the long side) of the archived video's first frame, made when the video
        is stored or, for videos archived earlier, on first call; None when there is no video or it cannot be
        decoded (never an exception)."""


@dataclass(frozen=True)
class Storage:
    """Everything the app stores, behind its interfaces."""

    ledger: LedgerStore
    library: LibraryStore
    drafts: DraftsStore
    media: MediaStore
