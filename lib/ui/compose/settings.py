"""The rest of the Compose form: duration, mode, sound, aspect ratio, frames, elements and Advanced."""

from __future__ import annotations

import streamlit as st

from lib.compose import form as cp
from lib.compose.evaluate import ComposeView
from lib.compose.frame_preview import frame_preview, own_file_finder
from lib.kling import rules
from lib.kling.pricing import RESOLUTIONS
from lib.trust.text import md_line
from lib.ui.compose.prompt import prompt_part
from lib.ui.compose.state import S, bound, changed, current_view, part, show, take_frame
from lib.ui.context import AppContext


def _duration() -> None:
    view = current_view()
    if view.form["compose_multi"]:
        st.metric("Duration", f"{view.job.total_duration} s", help="In multi-shot the duration is the sum of the shots.")
    else:
        bound(st.slider, "Duration (s)", "compose_duration", min_value=rules.DURATION_MIN,
              max_value=rules.DURATION_MAX, step=1)
    show(view, "duration")


def _mode() -> None:
    view = current_view()
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
    part(f"compose_{where}_notes", lambda: show(current_view(), where))


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
                         help="1 MB = 1,048,576 bytes, as KIE counts.", on_change=changed, args=(take_frame, ctx, which))
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
            part(f"compose_{which}_frame", lambda which=which: _frame(ctx, current_view(), which))
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



def form_column(ctx: AppContext) -> None:
    """The form, a keyed fragment per part: an edit redraws only the parts it changed (lib.compose.sections)."""
    prompt_part()
    _settings()
    _frames(ctx)
    part("compose_elements", lambda: _elements(current_view()))
    part("compose_advanced", lambda: _advanced(current_view()))


