"""Compose: build a Kling 3.0 job with live checks, preview and price it, submit variants, follow them.

The page draws; lib.compose.evaluate decides (one ComposeView per rerun).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from typing import Any

import streamlit as st

from lib.compose import form as cp
from lib.compose.batches import (
    MAX_BATCH,
    batch_cost,
    dry_run,
    elapsed_s,
    followed_rows,
    needs_confirmation,
    progress_fraction,
    submit_label,
    submit_variants,
    usual_seconds,
    video_source,
)
from lib.compose.drafts import new_form_id, valid_form_id
from lib.compose.evaluate import ComposeView, evaluate
from lib.compose.frame_preview import frame_preview, own_file_finder
from lib.compose.sections import (
    ADDRESS,
    SHOTS_SHOWN,
    TYPED_IN,
    parts_to_redraw,
    shown_variant,
    signatures,
    slot_key,
    slot_notes_key,
)
from lib.compose.snippets import curl_command, python_snippet
from lib.elements.model import Element
from lib.history.row import HistoryRow
from lib.history.transfer import read_recipe
from lib.history.view import state_icon
from lib.kie.errors import advice_for_failure
from lib.kie.uploads import liveness_checker
from lib.kling import rules
from lib.kling.job import job_from_payload, prompt_budget_length
from lib.kling.pricing import RESOLUTIONS, format_cost
from lib.tasks.service import callback_base
from lib.tasks.submit import SubmitGuard
from lib.trust.paths import safe_id
from lib.trust.text import md, md_line
from lib.trust.urls import link_target
from lib.ui.context import (
    AppContext,
    allow_private_results,
    current_balance,
    get_rate_limiter,
    get_uploader,
    refresh_balance,
    service_now,
)
from lib.ui.mention import mention_autocomplete
from lib.ui.page import redraw_only, setup_page

PREVIEW_PX = 420
S = st.session_state
PAGE_DEFAULTS: dict[str, Any] = {
    "compose_followed": [], "compose_fork": None, "compose_pending_insert": [], "compose_fork_missing": [],
    "compose_fork_from": None, "compose_last_result": None, "compose_dry_run": None,
    "compose_preview_pick": None, "compose_form_id": None, "compose_form_saved": None, "compose_form_own": [],
    "compose_result_form": None, "compose_fork_label": "Forked from task", "compose_recipe_nonce": 0,
    "compose_toast": None,
}
FORM_PARAM = "form"  # ?form=<id>: the saved form behind this address (never a key: forms hold none)


# ---------------------------------------------------------------- session state and widget binding

def _init_state() -> None:
    for key, value in {**cp.FORM_DEFAULTS, **PAGE_DEFAULTS}.items():
        S.setdefault(key, copy.deepcopy(value))
    S.setdefault("compose_guard", SubmitGuard())
    S.setdefault("compose_click_token", secrets.token_hex(8))


def _edit(action: Callable[..., Any], *args: Any) -> None:
    """Apply a lib.compose.form form edit to the plain session-state keys."""
    form = cp.form_of(S)
    action(form, *args)
    S.update(form)


def _sync(widget_key: str, key: str) -> None:
    S[key] = S[widget_key]
    if key == "compose_multi":
        _edit(cp.set_multi, S[key])


def bound(widget: Callable[..., Any], label: str, key: str, **kwargs: Any) -> Any:
    """A widget whose value lives in the plain key `key` (widget keys are dropped when the page is left)."""
    widget_key = "compose_w_" + key.removeprefix("compose_")
    S[widget_key] = S[key]
    return widget(label, key=widget_key, on_change=_changed, args=(_sync, widget_key, key),
                  kwargs={"shown": TYPED_IN.get(key)}, **kwargs)


def shot_widget(i: int, field: str) -> str:
    """The widget key of slot i's prompt or seconds: keyed by the slot, not the shot, so a moved shot updates
    the widgets the browser already drew instead of building new ones."""
    return f"compose_w_slot_{i}_{field}"


def _sync_shot(shot_id: str, field: str, widget_key: str) -> None:
    for shot in S["compose_shots"]:
        if shot["id"] == shot_id:
            shot[field] = S[widget_key]


def _take_frame(ctx: AppContext, which: str) -> None:
    """Check and upload a chosen frame file once (same content is not uploaded again)."""
    file = S.get(f"compose_w_{which}_file")
    if file is None:
        S[f"compose_{which}_upload"] = None
        return
    data = file.getvalue()
    current = S.get(f"compose_{which}_upload") or {}
    if current.get("sha") != cp.content_sha(data):
        S[f"compose_{which}_upload"] = cp.upload_frame(get_uploader(ctx), file.name, data).to_state()


def _view() -> ComposeView:
    """The form as it stands, evaluated once per state: every part of the page reads this one view."""
    form, library = cp.form_of(S), S["compose_library"]
    cached = S.get("compose_view")
    if cached is not None and cached.form == form and cached.elements == tuple(library):
        return cached
    S["compose_view"] = evaluate(form, library)
    return S["compose_view"]


def _settle() -> ComposeView:
    """Bring the derived keys up to date with the form and evaluate it."""
    form = cp.form_of(S)
    # once something was typed, clearing it again shows what is missing
    S["compose_touched"] = S.get("compose_touched", False) or not cp.is_untouched(form)
    S["compose_elements"] = list(form["compose_elements"])
    return _view()


def _around() -> dict[str, Any]:
    """The page state the summary's parts show besides the form (lib.compose.sections.AROUND)."""
    last, report = S["compose_last_result"], S["compose_dry_run"]
    return {"balance": S.get("settings_balance"), "token": S["compose_click_token"],
            "dry_run": report.summary() if report is not None else None,
            "last_result": (last["batch"], tuple(last["ids"]), tuple(last["messages"])) if last else None,
            "result_form": S["compose_result_form"], "pick": S["compose_preview_pick"]}


def _signatures() -> dict[str, Any]:
    return signatures(_settle(), S["compose_touched"], _around())


def _changed(change: Callable[..., Any], *args: Any, shown: str | None = None) -> None:
    """Every edit's callback: apply it, then redraw only the parts it changed (lib.compose.sections decides), not
    the whole form. `shown`: the part whose widget made the edit and already shows it."""
    change(*args)
    before = S.get("compose_signatures") or {}
    S["compose_signatures"] = _signatures()
    redraw_only(parts_to_redraw(before, S["compose_signatures"], shown))


def show(view: ComposeView, where: str) -> None:
    """The live problems of one field, right under it (none on a form nobody has touched yet)."""
    if not S.get("compose_touched"):
        return
    for problem in view.problems_of(where):
        error = problem.level == rules.ERROR
        (st.error if error else st.warning)(md(problem.message), icon="⛔" if error else "⚠️")


# ---------------------------------------------------------------- hand-offs from other pages

def _take_handoffs(elements: list[Element]) -> None:
    """History's Fork and Elements' "Use in Compose" fill the form."""
    if S["compose_fork"]:
        fork, S["compose_fork"] = S["compose_fork"], None
        try:
            filled, missing = cp.form_from_job(job_from_payload(fork.get("payload")), [e.name for e in elements])
            S.update(filled)
            S["compose_fork_missing"], S["compose_fork_from"] = missing, fork.get("task_id") or "(no task id)"
            S["compose_fork_label"] = fork.get("label", "Forked from task")
        except ValueError as exc:
            st.error(f"Could not open that run for forking: {md(exc)}")
    for name in S["compose_pending_insert"]:
        _edit(cp.insert_reference, name)
    S["compose_pending_insert"] = []


def _header() -> None:
    st.title("✍️ Compose")
    st.caption("Describe the video, check it, see the exact request and its cost, then submit. Nothing is sent "
               "until you press Submit; the form is kept when you switch pages or reload, and its address can be "
               "shared (it holds the form, never your key).")
    if S["compose_fork_from"]:
        st.info(f"{S['compose_fork_label']} {md_line(S['compose_fork_from'])}: every field the form shows is filled from "
                "that run. A callback URL is never carried over: set your own under Advanced if you need one.",
                icon="🍴")
    for name in S["compose_fork_missing"]:
        st.warning(f"Element **@{md_line(name)}** from the forked run no longer exists in the library: recreate it "
                   "on the Elements page or remove the reference.", icon="🧩")


def _drafts(ctx: AppContext) -> None:
    store = ctx.storage.drafts
    with st.expander("Drafts — save this form or reopen one", expanded=False):
        c1, c2 = st.columns(2)
        with c1:
            draft_name = st.text_input("Draft name", key="compose_w_draft_name", placeholder="e.g. beach run v2")
            if st.button("Save draft", key="compose_save_draft"):
                try:
                    saved = store.save(draft_name, cp.form_of(S))
                    st.success(f"Saved draft '{md_line(saved)}'.")
                    st.toast(f"Draft '{md_line(saved, 60)}' saved", icon="💾")
                except ValueError as exc:
                    st.error(md(exc))
        with c2:
            names = store.names()
            chosen = st.selectbox("Saved drafts", names, key="compose_w_draft_pick", index=None,
                                  placeholder="no drafts yet" if not names else "choose a draft")
            d1, d2 = st.columns(2)
            if d1.button("Open draft", key="compose_open_draft", disabled=not chosen):
                S.update(store.load(chosen))
                S["compose_fork_missing"], S["compose_fork_from"] = [], None
                st.rerun()
            if d2.button("Delete draft", key="compose_delete_draft", disabled=not chosen):
                store.delete(chosen)
                st.rerun()


def _recipe() -> None:
    """Open a JSON recipe exported from History: the same checks as a fork (missing elements flagged)."""
    with st.expander("Open a recipe (JSON exported from History)", expanded=False):
        source = st.file_uploader("Recipe file", type=["json"], key=f"compose_w_recipe_{S['compose_recipe_nonce']}",
                                  help="A recipe-<task>.json from History's “📄 Recipe (JSON)”, or a createTask body.")
        if st.button("Open recipe", key="compose_open_recipe", disabled=source is None) and source is not None:
            try:
                payload, task_id = read_recipe(source.getvalue())
            except ValueError as exc:
                st.error(f"{md_line(source.name, 80)}: {md(exc)} The form was not changed.", icon="🚫")
                return
            S["compose_fork"] = {"payload": payload, "task_id": task_id, "label": "Opened from the recipe of task"}
            S["compose_recipe_nonce"] += 1
            S["compose_toast"] = ("Recipe opened in the form", "📄")
            st.rerun()


def _open_address(ctx: AppContext) -> None:
    """?form=<id> (a reload, or a link someone shared) opens the form saved under that id, once per session."""
    wanted = st.query_params.get(FORM_PARAM)
    if not wanted or wanted == S["compose_form_id"]:
        return
    form = ctx.storage.drafts.load_form(wanted) if valid_form_id(wanted) else None
    if form is None:
        st.warning(f"No saved form has the id in this address ({md_line(wanted, 40)}): it may be older than the "
                   "500 kept. The form below is this session's.", icon="🔗")
        st.query_params.pop(FORM_PARAM, None)
        return
    S.update(form)
    S["compose_form_id"], S["compose_form_saved"] = wanted, form
    S["compose_fork_missing"], S["compose_fork_from"] = [], None


def _keep_address(ctx: AppContext, form: dict[str, Any]) -> None:
    """Save the form under an id in the address, so F5 keeps it and the address can be shared. A form opened
    from someone else's address gets its own id on the first change, so the shared link keeps its job."""
    if cp.is_untouched(form) and not S["compose_form_id"]:
        return
    if form != S["compose_form_saved"]:
        if S["compose_form_id"] not in S["compose_form_own"]:
            S["compose_form_id"] = new_form_id()
            S["compose_form_own"] = [*S["compose_form_own"], S["compose_form_id"]]
        ctx.storage.drafts.save_form(S["compose_form_id"], form)
        S["compose_form_saved"] = form
    if st.query_params.get(FORM_PARAM) != S["compose_form_id"]:
        st.query_params[FORM_PARAM] = S["compose_form_id"]


def _pending_toast() -> None:
    """A toast queued before an st.rerun() (a toast drawn just before a rerun would be lost)."""
    if S["compose_toast"]:
        text, icon = S["compose_toast"]
        S["compose_toast"] = None
        st.toast(text, icon=icon)


# ---------------------------------------------------------------- the form (left column)

def _chips_caption(view: ComposeView) -> None:
    if not view.elements:
        st.caption("No elements yet: create reusable characters and objects on the Elements page.")
        return
    st.caption("Insert an element into the " + ("shot chosen below" if view.form["compose_multi"] else "prompt") + ":")


def _chips(view: ComposeView) -> None:
    if not view.elements:
        return
    cols = st.columns(min(len(view.elements), 6))
    for i, element in enumerate(view.elements):
        cols[i % len(cols)].button(f"@{element.name}", key=f"compose_chip_{element.name}",
                                   help=md_line(element.description, 200), on_click=_changed,
                                   args=(_edit, cp.insert_reference, element.name))


def _single_prompt() -> None:
    part("compose_single", lambda: bound(
        st.text_area, "Prompt", "compose_prompt", height=140,
        placeholder="A corgi runs along a beach at sunset, camera tracking low. Use @name for elements."))
    part("compose_single_notes", _single_notes)


def _single_notes() -> None:
    view = _view()
    st.caption(f"{prompt_budget_length(view.form['compose_prompt']):,} / {rules.PROMPT_MAX_CHARS:,} characters "
               f"(each @element counts as {rules.ELEMENT_REFERENCE_CHARS})")
    show(view, "prompt")


def _shot(view: ComposeView, i: int, shot: dict[str, Any], count: int) -> None:
    with st.container(border=True):
        for field in ("prompt", "duration"):
            S[shot_widget(i, field)] = shot[field]
        typed = {"shown": slot_key(i)}  # the slot draws these widgets and nothing that changes with them
        st.text_area(f"Shot {i + 1}", key=shot_widget(i, "prompt"), height=80,
                     on_change=_changed, args=(_sync_shot, shot["id"], "prompt", shot_widget(i, "prompt")),
                     kwargs=typed)
        c_len, c_up, c_down, c_del = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
        # no min/max here: the widget would show 13 while the form keeps 4; the rules report the range instead
        c_len.number_input("Seconds", step=1, key=shot_widget(i, "duration"), on_change=_changed,
                           args=(_sync_shot, shot["id"], "duration", shot_widget(i, "duration")), kwargs=typed)
        c_up.button("↑ Up", key=f"compose_up_{i}", disabled=i == 0, use_container_width=True,
                    on_click=_changed, args=(_edit, cp.move_shot, i, -1))
        c_down.button("↓ Down", key=f"compose_down_{i}", disabled=i == count - 1,
                      use_container_width=True, on_click=_changed, args=(_edit, cp.move_shot, i, 1))
        c_del.button("✕ Remove", key=f"compose_del_{i}", use_container_width=True,
                     on_click=_changed, args=(_edit, cp.remove_shot, i))
        part(slot_notes_key(i), lambda: show(_view(), f"shot{i}"))


def _chip_target() -> None:
    view = _view()
    shots = view.form["compose_shots"]
    if view.elements and shots:
        S["compose_active_shot"] = min(S["compose_active_shot"], len(shots) - 1)
        bound(st.selectbox, "Element chips insert into", "compose_active_shot", options=list(range(len(shots))),
              format_func=lambda i: f"Shot {i + 1}")


def _shot_slot(i: int) -> None:
    """Slot i of the shot list, always drawn (empty past the last shot), so adding, editing or moving a shot
    redraws the slots it changed and not the others (lib.compose.sections)."""
    view = _view()
    shots = view.form["compose_shots"]
    if i < len(shots):
        _shot(view, i, shots[i], len(shots))


def _add_shot() -> None:
    st.button("➕ Add shot", key="compose_add_shot", disabled=len(S["compose_shots"]) >= rules.SHOTS_MAX,
              on_click=_changed, args=(_edit, cp.add_shot))


def _timeline() -> None:
    view = _view()
    st.markdown(cp.timeline_html(view.form["compose_shots"]), unsafe_allow_html=True)  # numbers the app computed only
    show(view, "shots")


def _shots() -> None:
    part("compose_chip_target", _chip_target)
    for i in range(SHOTS_SHOWN):
        part(slot_key(i), lambda i=i: _shot_slot(i))
    part("compose_add_shot", _add_shot)
    part("compose_timeline", _timeline)


def _duration() -> None:
    view = _view()
    if view.form["compose_multi"]:
        st.metric("Duration", f"{view.job.total_duration} s", help="In multi-shot the duration is the sum of the shots.")
    else:
        bound(st.slider, "Duration (s)", "compose_duration", min_value=rules.DURATION_MIN,
              max_value=rules.DURATION_MAX, step=1)
    show(view, "duration")


def _mode() -> None:
    view = _view()
    ratio = view.job.aspect_ratio or view.form["compose_aspect"]
    bound(st.radio, "Mode", "compose_mode", options=list(rules.MODES),
          format_func=lambda m: f"{m}\u00a0·\u00a0{RESOLUTIONS[m][ratio]}")


def _sound() -> None:
    if S["compose_multi"]:
        st.checkbox("Sound", value=True, disabled=True, key="compose_w_sound_locked")
        st.caption("🔒 On: KIE requires sound in multi-shot videos.")
    else:
        bound(st.checkbox, "Sound", "compose_sound")


def _aspect() -> None:
    first_set = cp.frame_url(cp.form_of(S), "first") is not None
    bound(st.selectbox, "Aspect ratio", "compose_aspect", options=list(rules.ASPECT_RATIOS), disabled=first_set)
    if first_set:
        st.caption("🖼️ Decided by the first frame image (not sent).")


def _notes(where: str) -> None:
    """The problems under a field whose widget is a part of its own (typing in it redraws these only)."""
    part(f"compose_{where}_notes", lambda: show(_view(), where))


def _settings() -> None:
    st.subheader("Settings", divider="gray")
    # two rows of two: four columns cut "16:9" to "16" and wrapped "std · 1280×720" at 1024–1280 px
    (c_dur, c_mode), (c_sound, c_aspect) = st.columns(2), st.columns(2)
    with c_dur:
        part("compose_duration", _duration)  # a shot's seconds redraw this, not the settings around it
    for where, draw, col in (("mode", _mode, c_mode), ("sound", _sound, c_sound), ("aspect", _aspect, c_aspect)):
        with col:
            part(f"compose_{where}", draw)
            _notes(where)


def _frame(ctx: AppContext, view: ComposeView, which: str) -> None:
    if which == "last" and view.form["compose_multi"]:
        st.caption("**Last frame** — multi-shot videos take a first frame only.")
        return
    source = bound(st.radio, f"{which.title()} frame", f"compose_{which}_source", options=list(cp.FRAME_SOURCES),
                   horizontal=True, format_func={"none": "None", "upload": "Upload", "url": "URL"}.get)
    if source == "upload":
        st.file_uploader(f"JPG or PNG, up to {rules.IMAGE_MAX_BYTES // 1048576} MB", type=["jpg", "jpeg", "png"],
                         key=f"compose_w_{which}_file", max_upload_size=rules.IMAGE_MAX_BYTES // 1048576,
                         help="1 MB = 1,048,576 bytes, as KIE counts.", on_change=_changed, args=(_take_frame, ctx, which))
        upload, picked = view.form[f"compose_{which}_upload"], S.get(f"compose_w_{which}_file")
        if upload and upload.get("url") and picked is not None and not upload.get("problems"):
            # the user's own bytes, checked by lib.kling.media; never the file host's URL in the browser
            st.image(picked.getvalue(), caption=f"{md_line(upload['name'], 60)} — uploaded to KIE's file host",
                     width=160)
        elif upload and upload.get("url"):
            st.caption(f"✅ {md_line(upload['name'], 60)} is on KIE's file host.")
    elif source == "url":
        bound(st.text_input, "Image URL", f"compose_{which}_url", placeholder="https://…/frame.png")
        _url_frame(ctx, which, view.form[f"compose_{which}_url"].strip())
    show(view, f"{which}_frame")


def _url_frame(ctx: AppContext, which: str, url: str) -> None:
    """A frame given by URL (a fork's, a recipe's, a continued take's): a thumbnail only from the app's own file or
    an allowed media host; otherwise a plain link naming the host. Made once per URL, not on every rerun."""
    if not url:
        return
    cached = S.get(f"compose_{which}_preview")
    if not cached or cached[0] != url:
        store = ctx.sandbox.backend if ctx.sandbox is not None else None
        cached = S[f"compose_{which}_preview"] = (url, frame_preview(url, own_file_finder(store)))
    preview = cached[1]
    if preview.image is not None:
        st.image(preview.image, width=160, caption="The frame at this URL")
    elif preview.link:
        st.link_button(f"Open the frame on {preview.link[1]}", preview.link[0])
        st.caption("Not shown here: your browser loads images only from KIE's media hosts.")


def _frames(ctx: AppContext) -> None:
    st.subheader("Frames", divider="gray")
    for which, col in zip(("first", "last"), st.columns(2), strict=True):
        with col:
            part(f"compose_{which}_frame", lambda which=which: _frame(ctx, _view(), which))
    _notes("frames")


def _elements(view: ComposeView) -> None:
    st.subheader("Elements", divider="gray")
    missing = view.missing_selected
    bound(st.multiselect, "Elements from the library", "compose_elements", options=view.element_names + missing,
          format_func=lambda n: f"@{n}" + (" (missing)" if n in missing else ""),
          help="Only elements a prompt references as @name are sent.")
    if view.unreferenced:
        st.caption("Not referenced, so not sent: " + md_line(", ".join(f"@{n}" for n in view.unreferenced)))
    if view.pending_uploads:
        st.caption("Uploaded to KIE when you submit (placeholder URLs in the preview): "
                   + md_line(", ".join(f"@{n}" for n in view.pending_uploads)))
    show(view, "elements")


def _advanced(view: ComposeView) -> None:
    with st.expander("Advanced", expanded=bool(view.problems_of("cfg") or view.problems_of("callback"))):
        bound(st.checkbox, "Send cfg_scale", "compose_cfg_on")
        if view.form["compose_cfg_on"]:
            bound(st.number_input, "cfg_scale", "compose_cfg_scale", min_value=0.0, max_value=1.0, step=0.05)
        st.caption("cfg_scale is in the seed reference but KIE's Kling 3.0 schema does not list it: it is sent "
                   "only when set here, and KIE may ignore or reject it.")
        show(view, "cfg")
        bound(st.text_input, "callBackUrl", "compose_callback", placeholder="https://example.com/kie-callback",
              help="KIE POSTs the final status here. Optional.")
        show(view, "callback")


def _prompt_body() -> None:
    """The single prompt, or the shots: what the Multi-shot switch swaps."""
    if _view().form["compose_multi"]:
        _shots()
    else:
        _single_prompt()


def _prompt_part() -> None:
    """The switch, the element chips and the prompt (or shots), each a part: toggling redraws the prompt and the
    chips' caption, not the switch itself, the chips or the `@` autocomplete."""
    part("compose_multi_switch", lambda: bound(
        st.toggle, "Multi-shot (up to 5 shots)", "compose_multi",
        help="Several shots with their own prompt and length, rendered as one video."))
    part("compose_chips_caption", lambda: _chips_caption(_view()))
    part("compose_chips", lambda: _chips(_view()))
    part("compose_prompt_body", _prompt_body)
    part("compose_mention", lambda: _autocomplete(_view()))


def _form_column(ctx: AppContext) -> None:
    """The form, a keyed fragment per part: an edit redraws only the parts it changed (lib.compose.sections)."""
    _prompt_part()
    _settings()
    _frames(ctx)
    part("compose_elements", lambda: _elements(_view()))
    part("compose_advanced", lambda: _advanced(_view()))


def part(key: str, draw: Callable[[], None]) -> None:
    """Draw one part of the page as a fragment named `key` (an edit's callback reruns it by name)."""
    st.fragment(draw, key=key)()


def _autocomplete(view: ComposeView) -> None:
    """`@` in the prompt, a shot or a prompt variant offers the library's names (the browser side of the widgets)."""
    # every field it may serve, drawn or not (it listens on the document): adding a shot or toggling Multi-shot
    # does not redraw it
    keys = ["compose_w_prompt", "compose_w_prompt_variants", *(shot_widget(i, "prompt") for i in range(SHOTS_SHOWN))]
    mention_autocomplete(keys, view.element_names, key="compose_mention")


# ---------------------------------------------------------------- cost, submit and preview (right column)

def _variants(view: ComposeView) -> None:
    with st.expander(f"Variants — {len(view.variants)} task(s) per submit", expanded=len(view.variants) > 1):
        part("compose_variant_axes", _variant_axes)
        part("compose_variant_single", _variant_single)
        st.caption(f"mode × sound × prompt × takes, at most {MAX_BATCH} tasks; each is its own task, "
                   "grouped by a batch id.")
        part("compose_variant_table", lambda: _variant_table(_view()))


def _variant_axes() -> None:
    bound(st.number_input, "Takes of each combination", "compose_takes", min_value=1, max_value=MAX_BATCH)
    bound(st.multiselect, "Modes", "compose_grid_modes", options=list(rules.MODES),
          placeholder="just the mode set above")


def _variant_single() -> None:
    """The axes a multi-shot job does not have."""
    if not _view().form["compose_multi"]:
        bound(st.multiselect, "Sound", "compose_grid_sounds", options=[False, True],
              format_func=lambda s: "sound on" if s else "sound off", placeholder="as set")
        bound(st.text_area, "Prompt variants (one per line)", "compose_prompt_variants", height=80,
              help="Each line is another prompt tried beside the main one.")


def _variant_table(view: ComposeView) -> None:
    if view.variant_error:
        st.error(md(view.variant_error))
    show(view, "variants")
    if len(view.variants) > 1:
            st.dataframe([{"variant": v.label, "cost": format_cost(batch_cost([b]) or 0)}
                          for v, b in zip(view.variants, view.payloads, strict=True)], hide_index=True, height=150)


def _submit(ctx: AppContext, view: ComposeView) -> None:
    """Create every variant once: a double click never creates two tasks; a 429 shows its wait."""
    waiting = st.empty()
    with st.spinner("Uploading elements if needed and creating the task(s)…"):
        result = submit_variants(ctx.client, ctx.storage.ledger, ctx.storage.library, get_uploader(ctx),
                                 list(view.variants), origin=ctx.origin, limiter=get_rate_limiter(ctx),
                                 now=service_now(ctx), callbacks_to=callback_base(ctx.settings.key_source),
                                 is_alive=liveness_checker(allow_private_results(ctx)),
                                 on_wait=lambda s: waiting.info(f"Rate limited by KIE, retrying in {s:.0f} s…",
                                                                icon="⏳"))
    waiting.empty()
    S["compose_followed"] = S["compose_followed"] + result.task_ids
    S["compose_last_result"] = {"batch": result.batch_id, "ids": result.task_ids, "messages": result.messages}
    S["compose_result_form"] = dict(view.form)  # the "Submitted" banner belongs to this form, not to later edits
    if result.task_ids:
        S["compose_toast"] = (f"Submitted {len(result.task_ids)} task(s)", "🚀")
    S["compose_dry_run"] = None
    refresh_balance(ctx)
    S["compose_click_token"] = secrets.token_hex(8)


def _cost(view: ComposeView) -> None:
    # stacked, not side by side (they were cut at 1024–1280 px)
    st.metric("This submit", f"{view.credits:,} credits" if view.credits is not None else "—",
              help="Credits × US$0.005, from lib/kling/pricing for exactly these settings.")


def _budget(ctx: AppContext) -> None:
    balance = current_balance(ctx)
    st.metric("Balance", f"{balance:,.2f}" if balance is not None else "—")
    bound(st.number_input, "Per-submit limit (credits, 0 = none)", "compose_limit", min_value=0, step=50)


def _gate(ctx: AppContext, view: ComposeView) -> None:
    """Submit, and what it waits for: a confirmation when the budget asks for one, the errors fixed."""
    balance = current_balance(ctx)
    token = S["compose_click_token"]
    reasons = needs_confirmation(view.credits, balance, int(view.form["compose_limit"]))
    confirmed = True
    if reasons:
        st.warning(md(" ".join(reasons)), icon="💸")
        confirmed = st.checkbox("Submit anyway", key=f"compose_confirm_{token}")
    if not S.get("compose_touched"):
        st.caption("✍️ Write a prompt (or switch on Multi-shot) to begin: every rule is checked as you type.")
    elif view.errors:
        st.caption(f"⛔ {len(view.errors)} error(s) to fix before submitting (shown next to their fields).")
    clicked = st.button(submit_label(len(view.variants), view.credits), key=f"compose_submit_{token}",
                        type="primary", disabled=bool(view.errors) or not view.variants or not confirmed,
                        use_container_width=True)
    if clicked:
        if S["compose_guard"].claim(token):
            _submit(ctx, view)
            st.rerun()
        st.info("That click was already submitted: nothing new was created.")


def _dry_run(view: ComposeView, balance: Any) -> None:
    if st.button("Dry run (validate only, spends nothing)", key="compose_dry_run_btn", use_container_width=True):
        S["compose_dry_run"] = dry_run(list(view.payloads) or [view.payload], balance=balance,
                                       limit=int(view.form["compose_limit"]), extra=list(view.extra_problems),
                                       pending_uploads=list(view.pending_uploads))
    report = S["compose_dry_run"]
    if report is not None:
        (st.error if report.errors else st.success)(md(report.summary()))
        for problem in report.errors + report.warnings:
            st.caption(f"{'⛔' if problem.level == rules.ERROR else '⚠️'} {md(problem.path or 'request')}: "
                       f"{md(problem.message)}")


def _last_result(view: ComposeView) -> None:
    last = S["compose_last_result"]
    if not last or S["compose_result_form"] != dict(view.form):
        return  # the form changed since that submit: its banner no longer describes what is on screen
    if last["ids"]:
        st.success(f"Submitted {len(last['ids'])} task(s) in batch `{last['batch']}`. Progress is below.")
    for message in last["messages"]:
        st.error(md(message))


def _preview(ctx: AppContext, view: ComposeView) -> None:
    shown = view.payloads[_preview_pick(view)] if len(view.variants) > 1 else view.payload
    # only the open tab is drawn (issue 17): every edit changes the request, and the hidden snippets' highlighting
    # cost the browser as much as the one shown; picking a tab reruns this part alone (its widget sits in it)
    tab_json, tab_curl, tab_py = st.tabs(["JSON", "cURL", "Python"], key="compose_preview_tab", on_change="rerun")
    # a fixed height scrolls a long prompt inside the preview, so Submit's progress below stays in reach
    if tab_json.open:
        tab_json.container(height=PREVIEW_PX, border=False).json(shown)
    readiness = view.snippet(shown)
    for tab, make, language in ((tab_curl, curl_command, "bash"), (tab_py, python_snippet, "python")):
        if not tab.open:
            continue
        box = tab.container(height=PREVIEW_PX, border=False)
        if readiness.ready:
            box.code(make(shown, ctx.settings.api_base), language=language)
        else:  # a placeholder URL would create (and bill) a task that cannot work
            box.warning(md(readiness.message()), icon="⏫")


def _preview_pick(view: ComposeView) -> int:
    """The previewed variant, kept by its label: when the grid changes, a label that no longer exists falls back to
    the first variant, so the picker and the JSON below it always name the same variant."""
    labels = [v.label for v in view.variants]
    S["compose_preview_pick"] = labels[shown_variant(view, S["compose_preview_pick"])]
    bound(st.selectbox, "Variant", "compose_preview_pick", options=labels)
    return labels.index(S["compose_preview_pick"])


def _summary(ctx: AppContext) -> None:
    """Cost, balance, Submit, dry run and the request preview: each a part of its own, so an edit redraws the ones
    it changed (a prompt edit leaves the cost and Submit alone; every edit changes the preview's request)."""
    part("compose_cost", lambda: _cost(_view()))
    part("compose_budget", lambda: _budget(ctx))
    part("compose_gate", lambda: _gate(ctx, _view()))
    part("compose_dry_run", lambda: _dry_run(_view(), current_balance(ctx)))
    part("compose_last_result", lambda: _last_result(_view()))
    st.subheader("Request preview")
    part("compose_preview", lambda: _preview(ctx, _view()))
    st.caption("The key is never shown: the snippets read it from KIE_API_KEY.")
    part(ADDRESS, lambda: _keep_address(ctx, dict(_view().form)))


# ---------------------------------------------------------------- progress of this session's tasks

def _progress_card(ctx: AppContext, row: HistoryRow) -> None:
    with st.container(border=True):
        elapsed = elapsed_s(row)
        st.markdown(f"{state_icon(row.state)} **{row.state}** · {md_line(row.task_id)}  \n"
                    f"{md_line(row.mode)}{' · sound' if row.sound else ''} · {row.duration or '?'} s · "
                    f"{elapsed} s elapsed · batch {md_line(row.batch_id)}")
        if not row.finished:
            usual = S.get("compose_usual", {}).get((row.mode, row.duration)) or usual_seconds((), row.mode, row.duration)
            st.progress(progress_fraction(elapsed, usual), text=f"{elapsed} s of about {usual} s usually")
        # same tab: a new tab would start an empty session
        st.page_link("pages/3_History.py", label="Open in History", icon="🗂️", query_params={"task": row.task_id})
        if row.state == "succeeded" and (source := video_source(row, ctx.storage.media)):
            st.video(source)
            if (video := ctx.storage.media.video(row.task_id)) is not None:
                # read only when clicked: this card redraws every 2 s while other tasks run
                st.download_button("Download MP4", lambda: video.read_bytes(), file_name=f"{safe_id(row.task_id)}.mp4",
                                   mime="video/mp4", key=f"compose_dl_{row.task_id}")
            elif link := link_target(row.result_url):
                st.link_button(f"Download MP4 from {link[1]}", link[0])
        elif row.state == "failed":
            st.error(f"KIE's reason ({md(row.fail_code or 'no code')}): {md(row.fail_msg or 'none given')}")
            st.caption(f"Fix: {md(advice_for_failure(row.fail_code, row.fail_msg))}")
        elif row.state == "unknown":
            st.warning(md(row.fail_msg))


def _progress(ctx: AppContext) -> None:
    rows = followed_rows(ctx.storage.ledger, S["compose_followed"])
    cols = st.columns(2)
    for i, row in enumerate(rows):
        with cols[i % 2]:
            _progress_card(ctx, row)
    if S.get("compose_progress_ticking") and not any(not r.finished for r in rows):
        S["compose_progress_ticking"] = False
        st.rerun(scope="app")


def _progress_section(ctx: AppContext) -> None:
    if not S["compose_followed"]:
        return
    st.subheader("Progress of this session's tasks")
    followed = followed_rows(ctx.storage.ledger, S["compose_followed"])
    ticking = any(not r.finished for r in followed)
    S["compose_progress_ticking"] = ticking
    if ticking:  # once per full run, not per 2 s tick: the usual time of each kind being generated
        kinds = {(r.mode, r.duration) for r in followed if not r.finished}
        done = [r for r in ctx.storage.ledger.rows() if r.state == "succeeded"]
        S["compose_usual"] = {k: usual_seconds(done, *k) for k in kinds}
    st.fragment(_progress, run_every=2.0 if ticking else None)(ctx)


def _composer(ctx: AppContext, elements: list[Element]) -> None:
    """The form and what depends on it. Each part is its own keyed fragment; the summary (cost, Submit, preview)
    is redrawn after every edit, the other parts only when the edit changed what they show."""
    S["compose_library"] = elements
    current_balance(ctx)  # read before the signatures, which show it
    S["compose_signatures"] = _signatures()
    part("compose_top", lambda: show(_view(), "general"))
    left, right = st.columns([3, 2], gap="large")
    with left:
        _form_column(ctx)
    with right:
        st.subheader("Cost and submit")
        part("compose_variants", lambda: _variants(_view()))
        _summary(ctx)


def main() -> None:
    ctx = setup_page("Compose", "✍️")
    _init_state()
    _pending_toast()
    elements = ctx.storage.library.list()
    _open_address(ctx)
    _take_handoffs(elements)
    _header()
    _drafts(ctx)
    _recipe()
    _composer(ctx, elements)
    _progress_section(ctx)


main()
