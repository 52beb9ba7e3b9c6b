"""Elements page: reusable characters and objects (@name), kept working past KIE's 3-day upload expiry."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import streamlit as st

from lib.elements.bundle import is_bundle
from lib.elements.copies import url_fetcher
from lib.elements.library import ElementLibrary
from lib.elements.model import (
    Element,
    ElementError,
    ImportResult,
    UploadStatus,
    check_before_use,
    count_problems,
    needs_upload,
    url_media,
)
from lib.elements.previews import boxed_thumbnail, picked_thumbnail, short_caption
from lib.elements.transfer import CLASH_CHOICES
from lib.kie.uploads import METHOD_HELP
from lib.kling import rules
from lib.kling.media import check_media, jpeg_data_uri
from lib.trust.limits import MAX_BUNDLE_BYTES
from lib.trust.text import md, md_line
from lib.trust.urls import host_of
from lib.ui.context import AppContext, allow_private_results, get_library, get_uploader, service_now
from lib.ui.page import redraw_only, setup_page

METHOD_LABELS = {"auto": "Auto", "stream": "Stream", "base64": "Base64", "url": "URL"}
BADGE_COLORS = {"uploaded": "green", "expires soon": "orange", "expired": "red", "not uploaded": "gray",
                "failed": "red"}
# Plain keys hold what the user typed (they survive page switches); widget keys are re-seeded from them.
FIELDS = {"elements_name": "elements_name_field", "elements_description": "elements_description_field",
          "elements_urls": "elements_urls_field", "elements_method": "elements_method_field"}
DEFAULTS: dict[str, Any] = {"elements_name": "", "elements_description": "", "elements_urls": "",
                            "elements_method": "auto", "elements_editing": None, "elements_confirm_delete": None,
                            "elements_flash": [], "elements_files_nonce": 0, "elements_import_nonce": 0,
                            "elements_reseed": False, "elements_clashes": None}
CARDS_PER_ROW = 3
CARDS_PER_PAGE = 12
THUMB_CACHE = 512  # card thumbnails kept in memory (a few KB each), shared by every session
THUMB_PX = 70  # two per row in a card from 1024 px up; st.image draws the data: address as it is
BUNDLE_MB = MAX_BUNDLE_BYTES // 1048576
IMAGE_MB, VIDEO_MB = rules.IMAGE_MAX_BYTES // 1048576, rules.VIDEO_MAX_BYTES // 1048576
SIZE_NOTE = "1 MB = 1,048,576 bytes here, as KIE counts (the file chip counts 1,000,000, so it shows a little more)"


# ---------------------------------------------------------------- state helpers

def _init_state() -> None:
    """Declare this page's keys once, then put the typed values back into the widgets when needed."""
    ss = st.session_state
    for key, value in DEFAULTS.items():
        ss.setdefault(key, list(value) if isinstance(value, list) else value)
    _reseed()


def _reseed() -> None:
    """Put the typed values back into the form's widgets when asked (also in a card's own rerun, which opens
    the edit dialog without running the page top)."""
    ss = st.session_state
    force, ss["elements_reseed"] = ss["elements_reseed"], False
    for plain, field in FIELDS.items():
        if force or field not in ss:
            ss[field] = ss[plain]


def _flash(level: str, text: str) -> None:
    st.session_state["elements_flash"].append((level, text))


def _show_flash(toast_only: bool = False) -> None:
    """The queued messages; `toast_only` (inside a card) shows successes as a toast alone, so no card grows."""
    for level, text in st.session_state["elements_flash"]:
        if not (toast_only and level == "success"):
            getattr(st, level)(text)
        if level == "success":
            st.toast(text, icon="✅")
    st.session_state["elements_flash"] = []


def _fill_form(editing: str | None, name: str = "", description: str = "") -> None:
    """Point the form at an element (or a blank new one); also clears the picked files and URLs."""
    st.session_state.update(elements_editing=editing, elements_name=name, elements_description=description,
                            elements_urls="", elements_reseed=True, elements_confirm_delete=None)
    st.session_state["elements_files_nonce"] += 1


def _start_edit(element: Element) -> None:
    _fill_form(element.id, element.name, element.description)


def _now(ctx: AppContext) -> datetime:
    """The clock uploads are judged by: the sandbox's own (tests and demos advance it) or the real one."""
    return service_now(ctx)


def _library_method(method: str) -> str:
    """The library sends web addresses by URL upload itself; 'url' means Auto for what it stores."""
    return "auto" if method == "url" else method


@st.cache_data(max_entries=THUMB_CACHE, show_spinner=False)
def _thumbnail(path: str, mtime_ns: int) -> str | None:
    """A small JPEG of a stored original as a data: address, cached per file version, so reruns never resend large
    images nor ask the media endpoint for small ones."""
    return jpeg_data_uri(boxed_thumbnail(path, THUMB_PX))


@st.cache_data(max_entries=64, show_spinner=False)
def _picked_thumbnail(file_id: str, name: str, _file: Any) -> str | None:
    """A thumbnail of a file picked in the uploader (checked by its header first), once per picked file."""
    return jpeg_data_uri(picked_thumbnail(name, _file, THUMB_PX))


# ---------------------------------------------------------------- uploading

def _upload(ctx: AppContext, library: ElementLibrary, element: Element, method: str) -> Element:
    """Upload the files the element needs, one progress step per file; failures stay on the element."""
    now = _now(ctx)
    pending = [m.file_name for m in element.media if needs_upload(m, now)]
    if not pending:
        return element
    uploader, done = get_uploader(ctx), []
    with st.status(f"Uploading {len(pending)} file(s) of @{md_line(element.name)}…", expanded=True) as box:
        bar = st.progress(0.0, text=f"0 of {len(pending)} files")

        def tracked(source: Any, file_name: str, upload_path: str, method: str = "auto") -> Any:
            st.write(f"⏫ {md_line(file_name)}")
            try:
                return uploader(source, file_name=file_name, upload_path=upload_path, method=method)
            finally:
                done.append(file_name)
                bar.progress(len(done) / len(pending), text=f"{len(done)} of {len(pending)} files")

        updated = library.upload(element.id, tracked, method=_library_method(method), now=now)
        status = library.status(updated, now)
        box.update(label=f"@{md_line(updated.name)}: {md_line(status.detail)}",
                   state="complete" if status.label == "uploaded" else "error")
    return updated


def _report(element: Element, status: UploadStatus) -> None:
    if status.label == "uploaded":
        _flash("success", f"@{md_line(element.name)} is uploaded ({md_line(status.detail)}).")
    else:
        _flash("warning", f"@{md_line(element.name)} is saved as a draft — {md(status.detail)}. Nothing you entered "
                          "is lost: "
                          "fix the problem, then press “Refresh upload” on its card.")


def _refresh(ctx: AppContext, library: ElementLibrary, elements: Sequence[Element]) -> None:
    """Re-upload every given element that is missing, failed, expired or expiring on KIE."""
    now, method = _now(ctx), st.session_state["elements_method"]
    stale = [e for e in elements if any(needs_upload(m, now) for m in e.media)]
    if not stale:
        _flash("info", "Every element is uploaded and fresh: nothing to refresh.")
    for element in stale:
        updated = _upload(ctx, library, element, method)
        _report(updated, library.status(updated, _now(ctx)))
    st.rerun()


# ---------------------------------------------------------------- the library cards

def _badge(status: UploadStatus, check: bool = False) -> None:
    text = f"uploaded · {status.detail}" if status.label == "uploaded" else status.label
    if status.label == "expires soon" and status.hours_left is not None:
        text = f"expires in {max(0, int(status.hours_left))} h"
    if check and status.label == "uploaded":  # 24–72 h: KIE may have deleted it already (its docs disagree)
        st.badge(f"check before use · {status.detail}", color="orange", icon="🔎",
                 help="Uploaded more than 24 h ago: checked with a cheap request before a submit, re-uploaded "
                      "from the original if gone.")
        return
    st.badge(text, color=BADGE_COLORS.get(status.label, "gray"))
    if status.label in ("failed", "expired", "expires soon", "not uploaded") and status.detail:
        st.caption(md(status.detail))


def _thumbnails(library: ElementLibrary, element: Element) -> None:
    """The element's files: image thumbnails in same-size boxes with one-line captions, then videos and links."""
    images, captions, others = [], [], []
    for media in element.media:
        path = library.local_file(media)
        thumb = _thumbnail(str(path), path.stat().st_mtime_ns) if path is not None and media.kind == "image" else None
        if thumb is not None:
            images.append(thumb)
            captions.append(md_line(short_caption(media.file_name)))
        else:
            others.append((media, path))
    if images:
        st.image(images, caption=captions, width=THUMB_PX)
    for media, path in others:
        if path is not None and media.kind == "video":
            st.video(str(path))
        elif media.copy_note:  # fetched when made, and the fetch failed: say why (issue 16.13)
            st.caption(f"🔗 {md_line(media.file_name, 60)}: {md_line(media.copy_note, 200)}")
        else:
            where = host_of(media.source_url)
            st.caption(f"🔗 {md_line(media.file_name, 60)} (no local copy" + (f"; from {md(where)})" if where else ")"))


def _card_fragment(ctx: AppContext, library: ElementLibrary, slot: int) -> None:
    """The card in place `slot` of the page as a fragment of its own (issue 17): its clicks (edit, delete?) redraw
    this card only.

    Everything in a card is keyed by its place on the page, not by its element: the browser keeps what it drew under
    a key, so a page turn updates twelve cards in place instead of taking them down and building new ones. And a page
    turn redraws only each card's body (title, thumbnails, badges, caption), not its buttons, which read at click
    time which element their card's body showed (`_shown_in`)."""
    st.fragment(_card, key=f"elements_card_fragment_{slot}")(ctx, library, slot)


def _in_place(library: ElementLibrary, slot: int) -> Element | None:
    """The element this page puts in place `slot` (None past the last, or deleted meanwhile in another tab)."""
    ids = st.session_state.get("elements_page_ids", [])
    return library.get(ids[slot]) if slot < len(ids) else None


def _shown_in(slot: int) -> str | None:
    """The element whose body this session last drew in place `slot`: what the user saw when clicking there."""
    return st.session_state.get("elements_drawn", {}).get(slot)


def _card(ctx: AppContext, library: ElementLibrary, slot: int) -> None:
    element = _in_place(library, slot)
    if element is None:
        return
    _show_flash(toast_only=True)  # a quick save reran only this card: its message shows here
    with st.container(border=True, key=f"elements_card_{slot}"):
        st.fragment(_card_body, key=f"elements_body_{slot}")(ctx, library, slot)
        _card_actions(ctx, library, element, slot)
    if st.session_state["elements_editing"] == element.id:
        _edit_dialog(ctx, library)  # opened from the card, so opening and a quick save redraw only this card


def _card_body(ctx: AppContext, library: ElementLibrary, slot: int) -> None:
    element = _in_place(library, slot)
    if element is None:
        return
    st.session_state.setdefault("elements_drawn", {})[slot] = element.id
    now = _now(ctx)
    status = library.status(element, now)
    editing = st.session_state["elements_editing"] == element.id
    st.markdown(f"##### @{md_line(element.name)}" + (" · ✏️ editing" if editing else ""))
    _thumbnails(library, element)  # right under the title: the thumbnails of a row of cards line up
    if editing:
        st.badge("being edited", color="violet", icon="✏️")
    _badge(status, check_before_use(element, now))
    count = len(element.media)
    kind = f"{count} images" if element.kind == "images" else "1 video"
    st.caption(f"{kind} · {md_line(element.description, 300)}")


def _aim(key: str, slot: int) -> None:
    st.session_state[f"{key}_aim"] = _shown_in(slot)


def _pressed(where: Any, label: str, action: str, element: Element, slot: int, **options: Any) -> bool:
    """A card button keyed by its slot: True only when the click was aimed at this element (the click records
    which element its card showed, so a list that changed in between acts on no other element)."""
    key = f"elements_{action}_{slot}"
    return bool(where.button(label, key=key, on_click=_aim, args=(key, slot), **options)) \
        and st.session_state.pop(f"{key}_aim", None) == element.id


def _start_edit_in(library: ElementLibrary, slot: int) -> None:
    if (element := library.get(_shown_in(slot) or "")) is not None:
        _start_edit(element)


def _ask_delete(slot: int) -> None:
    st.session_state["elements_confirm_delete"] = _shown_in(slot)


def _card_actions(ctx: AppContext, library: ElementLibrary, element: Element, slot: int) -> None:
    eid = element.id
    if st.session_state["elements_confirm_delete"] == eid:  # shown on one card at a time: keyed by the element
        st.warning(f"Delete @{md_line(element.name)} and its {len(element.media)} stored original(s)? This cannot be "
                   "undone.")
        yes, no = st.columns(2)
        if yes.button(":red[Yes, delete]", key=f"elements_delete_yes_{eid}", icon="🗑️"):
            library.delete(eid)
            if st.session_state["elements_editing"] == eid:
                _fill_form(None)
            st.session_state["elements_confirm_delete"] = None
            _flash("success", f"Deleted @{md_line(element.name)}.")
            st.rerun()
        no.button("Cancel", key=f"elements_delete_no_{eid}",
                  on_click=lambda: st.session_state.update(elements_confirm_delete=None))
        return
    # no tooltips on the card buttons (the grid's intro says what they do): 24 of them cost more to draw than the
    # cards' text, and drawing the grid draws them all
    if _pressed(st, "Use in Compose", "use", element, slot, type="primary", icon="➕", width="stretch"):
        st.session_state.setdefault("compose_pending_insert", []).append(element.name)
        st.switch_page("pages/2_Compose.py")
    left, right = st.columns(2)  # one pair of columns, two buttons in each: the same 2 × 2 grid, fewer blocks
    left.button("Edit / rename", key=f"elements_edit_{slot}", on_click=_start_edit_in, args=(library, slot),
                width="stretch")
    if _pressed(right, "Refresh upload", "refresh", element, slot, width="stretch"):
        _refresh(ctx, library, [element])
    if _pressed(left, "Duplicate", "duplicate", element, slot, width="stretch"):
        copy = library.duplicate(eid, now=_now(ctx))
        _flash("success", f"Duplicated @{md_line(element.name)} as @{md_line(copy.name)}.")
        st.rerun()
    right.button("Delete", key=f"elements_delete_{slot}", width="stretch", on_click=_ask_delete, args=(slot,))


def _library_section(ctx: AppContext, library: ElementLibrary, elements: list[Element]) -> None:
    if not elements:
        st.info("No elements yet. Create one below: a name, a description and 2–4 images or 1 video.")
        return
    _grid(ctx, library)


@st.fragment(key="elements_grid")
def _grid(ctx: AppContext, library: ElementLibrary) -> None:
    """The cards, paged: turning a page or searching redraws the grid only, not the form or the sidebar."""
    _show_flash()  # a quick save that renamed an element reran the grid: its message shows here
    elements, now = library.list(), _now(ctx)
    fresh = sum(1 for e in elements if library.status(e, now).label == "uploaded")
    st.markdown(f"**{len(elements)} element(s)**, {fresh} uploaded and fresh. KIE deletes uploads after "
                "3 days; the originals stay here, so “Refresh all uploads” (or Compose, on submit) re-uploads them.")
    st.caption("On a card: **Use in Compose** adds its @name to the Compose prompt and includes the element; "
               "**Refresh upload** re-uploads its files that are missing, failed, expired or expiring within 6 h.")
    bar = st.container(horizontal=True, wrap=True)  # whole labels at every width: the buttons wrap, not the text
    if bar.button("Refresh all uploads", key="elements_refresh_all", icon="🔄"):
        _refresh(ctx, library, elements)
    _export_buttons(bar, library)
    shown = _page_of(library, elements)
    _place([element.id for element in shown])
    for start in range(0, len(shown), CARDS_PER_ROW):
        row = shown[start:start + CARDS_PER_ROW]
        for slot, column in zip(range(start, start + len(row)), st.columns(CARDS_PER_ROW), strict=False):
            with column:
                _card_fragment(ctx, library, slot)
    editing = st.session_state["elements_editing"]
    if editing and editing not in {e.id for e in shown}:
        _edit_dialog(ctx, library)  # the edited element is on another page (or outside the search)


def _export_buttons(column: Any, library: ElementLibrary) -> None:
    """The portable bundle (originals included) and the JSON list (no media), each built only when clicked."""
    column.download_button("Export bundle (zip)", data=library.export_bundle, file_name="kling-elements-bundle.zip",
                           mime="application/zip", key="elements_export_bundle", icon="📦", on_click="ignore",
                           help="library.json plus every stored original: imports on another machine (or after a "
                                "delete) with thumbnails, and re-uploads from the copies.")
    column.download_button("Export JSON (no media)", data=library.export_json, file_name="kling-elements.json",
                           mime="application/json", key="elements_export", icon="⬇️", on_click="ignore",
                           help="A kling_elements list with names, descriptions and web addresses only. It holds no "
                                "media: imported elsewhere, files re-upload only while their web addresses work.")


def _place(ids: list[str]) -> None:
    """The elements of the page, by place: what each card's body draws."""
    st.session_state["elements_page_ids"] = ids
    st.session_state["elements_slots"] = {element_id: slot for slot, element_id in enumerate(ids)}


def _matching(elements: list[Element], query: str) -> list[Element]:
    query = query.strip().lower()
    return [e for e in elements if query in e.name.lower() or query in e.description.lower()] if query else elements


def _pages(count: int) -> int:
    return max(1, -(-count // CARDS_PER_PAGE))


def _slice(elements: list[Element], page: int) -> list[Element]:
    page = min(int(page), _pages(len(elements)))
    return elements[(page - 1) * CARDS_PER_PAGE:page * CARDS_PER_PAGE]


def _turned(library: ElementLibrary) -> None:
    """A page turn redraws the bodies of the cards whose element changed, not their buttons nor the grid around
    them. When the page holds another number of cards, or a card asks a question (delete?) or is being edited, the
    grid redraws as a whole."""
    ss = st.session_state
    before, elements = ss.get("elements_page_ids", []), library.list()
    matching = _matching(elements, ss.get("elements_search", ""))
    ids = [e.id for e in _slice(matching, ss["elements_page"])]
    if len(ids) != len(before) or ss["elements_confirm_delete"] or ss["elements_editing"] \
            or ss.get("elements_counted") != (len(elements), len(matching)):
        return  # the grid's own rerun (also when another tab added or deleted elements: its counts and pages)
    _place(ids)
    if changed := [f"elements_body_{slot}" for slot, (was, now) in enumerate(zip(before, ids, strict=True)) if was != now]:
        redraw_only(changed)


def _page_of(library: ElementLibrary, elements: list[Element]) -> list[Element]:
    """A big library is searched and paged: a rerun draws a dozen cards, not fifty."""
    if len(elements) <= CARDS_PER_PAGE:
        return elements
    left, right = st.columns([3, 1])
    query = left.text_input("Find an element", key="elements_search", placeholder="name or description",
                            persist_state="session")
    st.session_state["elements_counted"] = (len(elements), len(_matching(elements, query)))
    elements = _matching(elements, query)
    pages = _pages(len(elements))
    if st.session_state.get("elements_page", 1) > pages:  # a narrower search has fewer pages
        st.session_state["elements_page"] = pages
    with right:
        page = st.pagination(pages, key="elements_page", max_visible_pages=5, on_change=_turned,
                             args=(library,)) if pages > 1 else 1
    st.caption(f"{len(elements)} match(es); showing {CARDS_PER_PAGE} per page.")
    return _slice(elements, page)


# ---------------------------------------------------------------- the form

def _name_field(library: ElementLibrary, editing: Element | None) -> str:
    ss = st.session_state
    ss["elements_name"] = st.text_input(
        "Name", key="elements_name_field", placeholder="e.g. ginger_cat", max_chars=rules.ELEMENT_NAME_MAX_CHARS,
        help="Used in prompts as @name. Letters, digits, _ and -; no spaces; unique in the library.")
    name = ss["elements_name"]
    if name:
        problems = library.check_name(name, exclude_id=editing.id if editing else None)
        for problem in problems:
            st.error(md(problem), icon="✏️")
        if not problems and editing is not None and name == editing.name:
            st.caption(f"✅ Keeps its name @{md_line(name)}.")
        elif not problems:
            st.caption(f"✅ @{md_line(name)} is a valid, unused name.")
    return name


def _file_checks(files: Sequence[Any], kept_kinds: Sequence[str], urls: Sequence[str]) -> None:
    """Each picked file checked by content (header reads only), plus the 2–4 images / 1 video rule."""
    kinds = list(kept_kinds)
    _previews(files)
    for file in files:
        check = check_media(file.name, file)
        if check.kind in ("image", "video"):
            kinds.append(check.kind)
        if check.ok:
            size = f"{check.width}×{check.height} px, " if check.width else ""
            st.caption(f"✅ {md_line(file.name, 80)}: {check.kind}, {size}{_size_text(check.size)}")
        for problem in check.problems or ([] if check.ok else [f"{file.name}: not a JPG/PNG image or MP4/MOV video."]):
            st.error(md(problem), icon="🚫")
    for url in urls:
        media, problems = url_media(url)
        for problem in problems:
            st.error(md(problem), icon="🔗")
        if media:
            kinds.append(media.kind)
    if files or urls:
        for problem in count_problems(kinds):
            st.warning(md(problem))


def _previews(files: Sequence[Any]) -> None:
    """Thumbnails of the picked images before saving, in the same boxes as the cards."""
    shown = [(thumb, file.name) for file in files
             if (thumb := _picked_thumbnail(file.file_id, file.name, file)) is not None]
    if shown:
        st.image([thumb for thumb, _ in shown], caption=[md_line(short_caption(name)) for _, name in shown],
                 width=THUMB_PX)


def _size_text(size: int) -> str:
    return f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{max(1, round(size / 1024))} KB"


def _current_media(library: ElementLibrary, element: Element) -> list[str]:
    """The element's files with thumbnails; returns the file names the user wants removed."""
    st.markdown("**Current files**")
    _thumbnails(library, element)
    return st.multiselect("Remove files", [m.file_name for m in element.media], key="elements_remove_field",
                          help="Removed when you save; add replacements below.")


def _form(ctx: AppContext, library: ElementLibrary) -> None:
    ss = st.session_state
    _reseed()
    element = library.get(ss["elements_editing"]) if ss["elements_editing"] else None
    if ss["elements_editing"] and element is None:  # deleted elsewhere (another tab)
        _fill_form(None)
        st.rerun()
    st.subheader(f"Edit @{md_line(element.name)}" if element else "New element")
    if element and st.button("Cancel editing", key="elements_cancel_edit"):
        _fill_form(None)
        st.rerun()  # the whole page: the dialog closes
    left, right = st.columns([1, 1])
    with left:
        name = _name_field(library, element)
        ss["elements_description"] = st.text_area(
            "Description", key="elements_description_field", height=100,
            placeholder="e.g. a ginger cat with a white chest",
            help="Sent to Kling with the reference files: say what the element is.")
        method = st.radio("Upload method", list(METHOD_LABELS), format_func=METHOD_LABELS.get, horizontal=True,
                          key="elements_method_field")
        ss["elements_method"] = method
        st.caption(METHOD_HELP)
    with right:
        remove = _current_media(library, element) if element else []
        files = st.file_uploader(
            f"Reference files — 2–4 images (JPG/PNG, ≤ {IMAGE_MB} MB each) or 1 video (MP4/MOV, ≤ {VIDEO_MB} MB)",
            accept_multiple_files=True, key=f"elements_files_{ss['elements_files_nonce']}",
            max_upload_size=VIDEO_MB,
            help=f"Images at least 300×300 px. Drag and drop works. {SIZE_NOTE}.") or []
        ss["elements_urls"] = st.text_area("…or web addresses, one per line", key="elements_urls_field", height=80,
                                           placeholder="https://example.com/cat-front.jpg")
        urls = [line.strip() for line in ss["elements_urls"].splitlines() if line.strip()]
        kept = [m.kind for m in element.media if m.file_name not in remove] if element else []
        _file_checks(files, kept, urls)
    label = "Save changes and upload" if element else "Save and upload"
    if st.button(label, key="elements_save", type="primary", icon="💾", on_click=_quick_save,
                 args=(ctx, library, element.id if element else None)):
        _save(ctx, library, element, name, files, urls, remove)


def _quick_save(ctx: AppContext, library: ElementLibrary, element_id: str | None) -> None:
    """Save-button callback: an edit of the name or description alone, with nothing to upload, is saved here and
    only its card redraws (issue 17); anything else (new files, problems, uploads) is left to `_save`."""
    ss = st.session_state
    element = library.get(element_id) if element_id else None
    picked = ss.get(f"elements_files_{ss['elements_files_nonce']}") or ss.get("elements_urls_field", "").strip() \
        or ss.get("elements_remove_field")
    if element is None or picked or any(needs_upload(m, _now(ctx)) for m in element.media):
        return
    name, description = ss.get("elements_name_field", element.name), ss.get("elements_description_field", "")
    if library.check_name(name, exclude_id=element.id) or not description.strip():
        return  # `_save` shows the problems
    if (name, description.strip()) != (element.name, element.description):
        library.update(element.id, name=name, description=description, now=_now(ctx))
    _flash("success", f"Saved @{md_line(name)}: nothing to upload.")
    _fill_form(None)
    # the card alone when it keeps its place on this page; the grid when a new name may move it
    slot = ss.get("elements_slots", {}).get(element.id)
    redraw_only(f"elements_card_fragment_{slot}" if name == element.name and slot is not None else "elements_grid")


def _save(ctx: AppContext, library: ElementLibrary, element: Element | None, name: str, files: Sequence[Any],
          urls: list[str], remove: list[str]) -> None:
    """Save (create or update), then upload; validation problems keep everything in the form."""
    ss, now = st.session_state, _now(ctx)
    if ss["elements_method"] == "url" and files:
        st.error("URL upload only sends web addresses: choose Auto, Stream or Base64 for the local files.")
        return
    picked = [(file.name, file) for file in files]
    try:
        fetch = url_fetcher(allow_private_results(ctx))
        with st.spinner("Keeping a local copy of each web address…", show_time=True) if urls else nullcontext():
            if element:
                saved = library.update(element.id, name=name, description=ss["elements_description"],
                                       add_files=picked, add_urls=urls, remove_media=remove, now=now, fetch=fetch)
            else:
                saved = library.create(name, ss["elements_description"], picked, urls, now=now, fetch=fetch)
    except ElementError as exc:
        already = set(library.check_name(name, exclude_id=element.id if element else None))
        for problem in exc.problems:
            if problem not in already:  # the name field shows its own problems: each error once
                st.error(md(problem))
        return
    uploaded = _upload(ctx, library, saved, ss["elements_method"])
    status = library.status(uploaded, _now(ctx))
    _report(uploaded, status)
    if status.label == "uploaded":
        _fill_form(None)
    else:
        _start_edit(uploaded)  # the draft stays in the form, ready to fix
    st.rerun()


def _stop_editing() -> None:
    _fill_form(None)


@st.dialog("Edit element", width="large", on_dismiss=_stop_editing)
def _edit_dialog(ctx: AppContext, library: ElementLibrary) -> None:
    """Edit in a dialog over the cards (the form below them was off screen); the card is marked meanwhile."""
    _form(ctx, library)


# ---------------------------------------------------------------- import

def _import_section(library: ElementLibrary) -> None:
    # keyed, so a rerun (picking the file) keeps it open
    with st.expander("Import elements (bundle or JSON)", expanded=bool(st.session_state.get("elements_clashes")),
                     key="elements_import_box"):
        st.caption("A bundle (zip) from “Export bundle” brings the originals: thumbnails, and uploads from the "
                   "copies. A JSON export or a `kling_elements` list holds no media: its files re-upload from their "
                   "web addresses. Good entries are added; bad ones are reported by name.")
        source = st.file_uploader(f"Bundle (.zip, ≤ {BUNDLE_MB} MB) or library JSON", max_upload_size=BUNDLE_MB,
                                  key=f"elements_import_{st.session_state['elements_import_nonce']}")
        if st.button("Import", key="elements_import_go", disabled=source is None) and source is not None:
            try:
                result = _import(library, source.getvalue())
            except ElementError as exc:
                for problem in exc.problems:
                    st.error(f"{md_line(source.name, 80)}: {md(problem)} Nothing was changed.")
                return
            _report_import(result)
            # names already taken are not errors to retype: offer rename or replace for each
            st.session_state["elements_clashes"] = (source.getvalue(), result.clashes) if result.clashes else None
            st.session_state["elements_import_nonce"] += 1
            st.rerun()
        _clash_choices(library)


def _import(library: ElementLibrary, data: bytes, on_clash: dict[str, str] | None = None,
            only: Sequence[str] | None = None) -> ImportResult:
    """A bundle (a zip, with its originals) or a JSON export, told apart by the content, not the file name."""
    if is_bundle(data):
        result = library.import_bundle(data, on_clash=on_clash, only=only)
        _warm_thumbnails(library, result.added)
        return result
    return library.import_json(data, on_clash=on_clash, only=only)


def _warm_thumbnails(library: ElementLibrary, names: Sequence[str]) -> None:
    """The thumbnails of a bundle's images, made while its import's spinner shows, so turning the pages of the
    new cards decodes no image (up to the cache's size; later ones are made when first shown)."""
    left = THUMB_CACHE // 2
    for name in names:
        element = library.by_name(name)
        for media in element.media if element is not None else ():
            path = library.local_file(media) if media.kind == "image" else None
            if path is None:
                continue
            if left == 0:
                return
            _thumbnail(str(path), path.stat().st_mtime_ns)
            left -= 1


def _report_import(result: ImportResult) -> None:
    if result.added:
        _flash("success", f"Imported {len(result.added)} element(s): "
                          + md_line(", ".join(f"@{n}" for n in result.added)) + ".")
    for label, reason in result.bad:
        if isinstance(label, str) and label in result.clashes:
            continue  # offered below as rename / replace
        shown = f"@{label}" if isinstance(label, str) else f"Entry {label}"
        _flash("error", f"Not imported — {md_line(shown, 80)}: {md(reason)}")


def _clash_choices(library: ElementLibrary) -> None:
    """For each imported name that is already taken: import under a free name, replace the existing one, or skip."""
    pending = st.session_state.get("elements_clashes")
    if not pending:
        return
    data, names = pending
    st.warning(f"{len(names)} imported element(s) have a name already in the library (names ignore case).", icon="🧩")
    choices = {}
    for name in names:
        choices[name] = st.radio(f"@{md_line(name, 60)}", CLASH_CHOICES, horizontal=True, key=f"elements_clash_{name}",
                                 format_func={"rename": "Import under a new name", "replace": "Replace the existing one",
                                              "skip": "Skip"}.get)
    if st.button("Apply", key="elements_clash_apply", type="primary"):
        result = _import(library, data, on_clash=choices, only=names)
        _report_import(result)
        if result.replaced:
            _flash("info", f"Replaced {len(result.replaced)} element(s) and their stored originals.")
        st.session_state["elements_clashes"] = None
        st.rerun()


# ---------------------------------------------------------------- page

def main() -> None:
    ctx = setup_page("Elements", "🧩")
    _init_state()
    st.title("🧩 Elements")
    st.caption("Reusable characters and objects: a name, a description and 2–4 reference images or one video, "
               "used in prompts as `@name`. Originals are kept in the data folder, so elements keep working after "
               "KIE deletes uploads (3 days).")
    library = get_library(ctx)
    _show_flash()
    try:
        elements = library.list()
    except ElementError as exc:
        for problem in exc.problems:
            st.error(md(problem))
        st.stop()
    _library_section(ctx, library, elements)
    st.divider()
    editing = library.get(st.session_state["elements_editing"]) if st.session_state["elements_editing"] else None
    if editing is not None:
        st.caption(f"✏️ Editing @{md_line(editing.name)} in the dialog: save or cancel there to add new elements.")
    else:
        _form(ctx, library)
    st.divider()
    _import_section(library)


main()
