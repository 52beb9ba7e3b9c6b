"""Compose: build a Kling 3.0 job with live checks, preview and price it, submit variants, follow them."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import streamlit as st

from lib import compose as cp
from lib import rules
from lib.elements import ElementLibrary
from lib.history_view import details_link
from lib.jobs import build_payload, job_from_payload, prompt_budget_length
from lib.pricing import RESOLUTIONS, format_cost
from lib.tasks import SubmitGuard
from lib.trust.paths import existing_video, safe_id
from lib.trust.text import md, md_line
from lib.trust.urls import link_target
from lib.ui import (
    current_balance,
    get_ledger,
    get_library,
    get_rate_limiter,
    get_uploader,
    refresh_balance,
    service_now,
    setup_page,
)
from lib.validation import validate_payload

PREVIEW_PX = 420

ctx = setup_page("Compose", "✍️")
S = st.session_state
for _key, _value in cp.FORM_DEFAULTS.items():
    S.setdefault(_key, copy.deepcopy(_value))
for _key, _value in {"compose_followed": [], "compose_fork": None, "compose_pending_insert": [],
                     "compose_fork_missing": [], "compose_fork_from": None, "compose_last_result": None,
                     "compose_dry_run": None}.items():
    S.setdefault(_key, _value)
S.setdefault("compose_guard", SubmitGuard())
S.setdefault("compose_click_token", secrets.token_hex(8))


@st.cache_data(ttl=300, max_entries=8, show_spinner=False)
def _library_list(data_dir: str, stamp: int) -> list[Any]:
    """The element library, re-read only when library.json changes."""
    return ElementLibrary(data_dir).list()


def library_elements() -> list[Any]:
    path = get_library(ctx).path
    return _library_list(str(ctx.settings.data_dir), path.stat().st_mtime_ns if path.exists() else 0)


def _edit(action: Any, *args: Any) -> None:
    """Apply a lib.compose form edit to the plain session-state keys."""
    form = cp.form_of(S)
    action(form, *args)
    S.update(form)


def _sync(widget_key: str, key: str) -> None:
    S[key] = S[widget_key]
    if key == "compose_multi":
        _edit(cp.set_multi, S[key])


def bound(widget: Any, label: str, key: str, **kwargs: Any) -> Any:
    """A widget whose value lives in the plain key `key` (widget keys are dropped when the page is left)."""
    widget_key = "compose_w_" + key.removeprefix("compose_")
    S[widget_key] = S[key]
    return widget(label, key=widget_key, on_change=_sync, args=(widget_key, key), **kwargs)


def _sync_shot(shot_id: str, part: str) -> None:
    for shot in S["compose_shots"]:
        if shot["id"] == shot_id:
            shot[part] = S[f"compose_w_shot_{shot_id}_{part}"]


def _take_frame(which: str) -> None:
    """Check and upload a chosen frame file once (same content is not uploaded again)."""
    file = S.get(f"compose_w_{which}_file")
    if file is None:
        S[f"compose_{which}_upload"] = None
        return
    data = file.getvalue()
    current = S.get(f"compose_{which}_upload") or {}
    if current.get("sha") != cp.content_sha(data):
        S[f"compose_{which}_upload"] = cp.upload_frame(get_uploader(ctx), file.name, data).to_state()


def show(field: str) -> None:
    """The live problems of one field, right under it (none on a form nobody has touched yet)."""
    if untouched:
        return
    for problem in by_field.get(field, []):
        (st.error if problem.level == rules.ERROR else st.warning)(md(problem.message), icon="⛔" if
                                                                   problem.level == rules.ERROR else "⚠️")


# ---- hand-offs from other pages: History's Fork and Elements' "Use in Compose"
if S["compose_fork"]:
    fork, S["compose_fork"] = S["compose_fork"], None
    try:
        names_now = [e.name for e in library_elements()]
        filled, missing = cp.form_from_job(job_from_payload(fork.get("payload")), names_now)
        S.update(filled)
        S["compose_fork_missing"], S["compose_fork_from"] = missing, fork.get("task_id")
    except ValueError as exc:
        st.error(f"Could not open that run for forking: {md(exc)}")
if S["compose_pending_insert"]:
    for _name in S["compose_pending_insert"]:
        _edit(cp.insert_reference, _name)
    S["compose_pending_insert"] = []

# ---- everything below is computed from the plain keys, so problems can be drawn next to each field
form = cp.form_of(S)
S["compose_touched"] = S.get("compose_touched", False) or not cp.is_untouched(form)
untouched = not S["compose_touched"]  # once something was typed, clearing it again shows what is missing
elements = library_elements()
element_names = [e.name for e in elements]
used_names = cp.form_elements(form)
specs, pending_uploads = cp.preview_specs(e for e in elements if e.name in used_names)
job = cp.job_from_form(form, specs)
payload = build_payload(job)
problems = cp.form_problems(form, element_names) + validate_payload(payload)
by_field = cp.problems_by_field(problems, job.multi_shots)
variant_error = ""
try:
    variants = cp.variant_jobs(job, takes=int(form["compose_takes"]), modes=form["compose_grid_modes"],
                               sounds=form["compose_grid_sounds"],
                               prompts=form["compose_prompt_variants"].splitlines())
except ValueError as exc:
    variants, variant_error = [], str(exc)
payloads = [build_payload(v.job) for v in variants]
for variant, body in zip(variants[1:], payloads[1:], strict=True):
    for problem in validate_payload(body):
        if problem.level == rules.ERROR and problem not in problems:
            by_field.setdefault("variants", []).append(
                type(problem)(problem.path, f"{variant.label}: {problem.message}", problem.level))
errors = [p for p in problems if p.level == rules.ERROR] + by_field.get("variants", [])
credits = cp.batch_cost(payloads) if variants else None
balance = current_balance(ctx)

st.title("✍️ Compose")
st.caption("Describe the video, check it, see the exact request and its cost, then submit. Nothing is sent "
           "until you press Submit; the form is kept when you switch pages.")
if S["compose_fork_from"]:
    st.info(f"Forked from task {md_line(S['compose_fork_from'])}: every field the form shows is filled from that "
            "run. A callback URL is never carried over: set your own under Advanced if you need one.", icon="🍴")
for _name in S["compose_fork_missing"]:
    st.warning(f"Element **@{md_line(_name)}** from the forked run no longer exists in the library: recreate it on "
               "the Elements page or remove the reference.", icon="🧩")

with st.expander("Drafts — save this form or reopen one", expanded=False):
    store = cp.DraftStore(ctx.settings.data_dir)
    c1, c2 = st.columns(2)
    with c1:
        draft_name = st.text_input("Draft name", key="compose_w_draft_name", placeholder="e.g. beach run v2")
        if st.button("Save draft", key="compose_save_draft"):
            try:
                st.success(f"Saved draft '{md_line(store.save(draft_name, cp.form_of(S)))}'.")
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

show("general")
left, right = st.columns([3, 2], gap="large")
with left:
    bound(st.toggle, "Multi-shot (up to 5 shots)", "compose_multi",
          help="Several shots with their own prompt and length, rendered as one video.")
    if elements:
        st.caption("Insert an element into the " + ("shot chosen below" if form["compose_multi"] else "prompt") + ":")
        chip_cols = st.columns(min(len(elements), 6))
        for i, element in enumerate(elements):
            chip_cols[i % len(chip_cols)].button(f"@{element.name}", key=f"compose_chip_{element.name}",
                                                 help=md(element.description), on_click=_edit,
                                                 args=(cp.insert_reference, element.name))
    else:
        st.caption("No elements yet: create reusable characters and objects on the Elements page.")
    if not form["compose_multi"]:
        bound(st.text_area, "Prompt", "compose_prompt", height=140,
              placeholder="A corgi runs along a beach at sunset, camera tracking low. Use @name for elements.")
        st.caption(f"{prompt_budget_length(form['compose_prompt']):,} / {rules.PROMPT_MAX_CHARS:,} characters "
                   f"(each @element counts as {rules.ELEMENT_REFERENCE_CHARS})")
        show("prompt")
    else:
        shots = form["compose_shots"]
        if elements and shots:
            S["compose_active_shot"] = min(S["compose_active_shot"], len(shots) - 1)
            bound(st.selectbox, "Element chips insert into", "compose_active_shot", options=list(range(len(shots))),
                  format_func=lambda i: f"Shot {i + 1}")
        for i, shot in enumerate(shots):
            with st.container(border=True):
                for part in ("prompt", "duration"):
                    S[f"compose_w_shot_{shot['id']}_{part}"] = shot[part]
                st.text_area(f"Shot {i + 1}", key=f"compose_w_shot_{shot['id']}_prompt", height=80,
                             on_change=_sync_shot, args=(shot["id"], "prompt"))
                c_len, c_up, c_down, c_del = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
                c_len.number_input("Seconds", min_value=rules.SHOT_DURATION_MIN, max_value=rules.SHOT_DURATION_MAX,
                                   step=1, key=f"compose_w_shot_{shot['id']}_duration",
                                   on_change=_sync_shot, args=(shot["id"], "duration"))
                c_up.button("↑ Up", key=f"compose_up_{shot['id']}", disabled=i == 0, use_container_width=True,
                            on_click=_edit, args=(cp.move_shot, i, -1))
                c_down.button("↓ Down", key=f"compose_down_{shot['id']}", disabled=i == len(shots) - 1,
                              use_container_width=True, on_click=_edit, args=(cp.move_shot, i, 1))
                c_del.button("✕ Remove", key=f"compose_del_{shot['id']}", use_container_width=True,
                             on_click=_edit, args=(cp.remove_shot, i))
                show(f"shot{i}")
        st.button("➕ Add shot", key="compose_add_shot", disabled=len(shots) >= rules.SHOTS_MAX,
                  on_click=_edit, args=(cp.add_shot,))
        st.markdown(cp.timeline_html(shots), unsafe_allow_html=True)
        show("shots")

    st.subheader("Settings", divider="gray")
    c_dur, c_mode, c_sound, c_aspect = st.columns(4)
    with c_dur:
        if form["compose_multi"]:
            st.metric("Duration", f"{job.total_duration} s", help="In multi-shot the duration is the sum of the shots.")
        else:
            bound(st.slider, "Duration (s)", "compose_duration", min_value=rules.DURATION_MIN,
                  max_value=rules.DURATION_MAX, step=1)
        show("duration")
    with c_mode:
        ratio = job.aspect_ratio or form["compose_aspect"]
        bound(st.radio, "Mode", "compose_mode", options=list(rules.MODES),
              format_func=lambda m: f"{m} · {RESOLUTIONS[m][ratio]}")
        show("mode")
    with c_sound:
        if form["compose_multi"]:
            st.checkbox("Sound", value=True, disabled=True, key="compose_w_sound_locked")
            st.caption("🔒 On: KIE requires sound in multi-shot videos.")
        else:
            bound(st.checkbox, "Sound", "compose_sound")
        show("sound")
    with c_aspect:
        first_set = cp.frame_url(form, "first") is not None
        bound(st.selectbox, "Aspect ratio", "compose_aspect", options=list(rules.ASPECT_RATIOS), disabled=first_set)
        if first_set:
            st.caption("🖼️ Decided by the first frame image (not sent).")
        show("aspect")

    st.subheader("Frames", divider="gray")
    frame_cols = st.columns(2)
    for which, col in (("first", frame_cols[0]), ("last", frame_cols[1])):
        with col:
            if which == "last" and form["compose_multi"]:
                st.caption("**Last frame** — multi-shot videos take a first frame only.")
                continue
            source = bound(st.radio, f"{which.title()} frame", f"compose_{which}_source", options=list(cp.FRAME_SOURCES),
                           horizontal=True, format_func={"none": "None", "upload": "Upload", "url": "URL"}.get)
            if source == "upload":
                st.file_uploader("JPG or PNG, up to 10 MB", type=["jpg", "jpeg", "png"], key=f"compose_w_{which}_file",
                                 on_change=_take_frame, args=(which,))
                upload = form[f"compose_{which}_upload"]
                picked = S.get(f"compose_w_{which}_file")
                if upload and upload.get("url") and picked is not None and not upload.get("problems"):
                    # the user's own bytes, checked by lib.media; never the file host's URL in the browser
                    st.image(picked.getvalue(), caption=f"{md_line(upload['name'], 60)} — uploaded to KIE's file host",
                             width=160)
                elif upload and upload.get("url"):
                    st.caption(f"✅ {md_line(upload['name'], 60)} is on KIE's file host.")
            elif source == "url":
                bound(st.text_input, "Image URL", f"compose_{which}_url", placeholder="https://…/frame.png")
            show(f"{which}_frame")
    show("frames")

    st.subheader("Elements", divider="gray")
    missing_selected = [n for n in form["compose_elements"] if n not in element_names]
    S["compose_elements"] = [n for n in form["compose_elements"] if n in element_names + missing_selected]
    bound(st.multiselect, "Elements from the library", "compose_elements", options=element_names + missing_selected,
          format_func=lambda n: f"@{n}" + (" (missing)" if n in missing_selected else ""),
          help="Only elements a prompt references as @name are sent.")
    referenced = {n for t in job.prompts() for n in cp.referenced_names(t)}
    unreferenced = [n for n in form["compose_elements"] if n not in referenced]
    if unreferenced:
        st.caption("Not referenced, so not sent: " + md_line(", ".join(f"@{n}" for n in unreferenced)))
    if pending_uploads:
        st.caption("Uploaded to KIE when you submit (placeholder URLs in the preview): "
                   + md_line(", ".join(f"@{n}" for n in pending_uploads)))
    show("elements")

    with st.expander("Advanced", expanded=bool(by_field.get("cfg") or by_field.get("callback"))):
        bound(st.checkbox, "Send cfg_scale", "compose_cfg_on")
        if form["compose_cfg_on"]:
            bound(st.number_input, "cfg_scale", "compose_cfg_scale", min_value=0.0, max_value=1.0, step=0.05)
        st.caption("cfg_scale is in the seed reference but KIE's Kling 3.0 schema does not list it: it is sent "
                   "only when set here, and KIE may ignore or reject it.")
        show("cfg")
        bound(st.text_input, "callBackUrl", "compose_callback", placeholder="https://example.com/kie-callback",
              help="KIE POSTs the final status here. Optional.")
        show("callback")

with right:
    st.subheader("Cost and submit")
    with st.expander(f"Variants — {len(variants)} task(s) per submit", expanded=len(variants) > 1):
        bound(st.number_input, "Takes of each combination", "compose_takes", min_value=1, max_value=cp.MAX_BATCH)
        bound(st.multiselect, "Modes", "compose_grid_modes", options=list(rules.MODES),
              placeholder=f"just {form['compose_mode']}")
        if not form["compose_multi"]:
            bound(st.multiselect, "Sound", "compose_grid_sounds", options=[False, True],
                  format_func=lambda s: "sound on" if s else "sound off", placeholder="as set")
            bound(st.text_area, "Prompt variants (one per line)", "compose_prompt_variants", height=80,
                  help="Each line is another prompt tried beside the main one.")
        st.caption(f"mode × sound × prompt × takes, at most {cp.MAX_BATCH} tasks; each is its own task, "
                   "grouped by a batch id.")
        if variant_error:
            st.error(variant_error)
        show("variants")
        if len(variants) > 1:
            st.dataframe([{"variant": v.label, "cost": format_cost(cp.batch_cost([b]) or 0)}
                          for v, b in zip(variants, payloads, strict=True)], hide_index=True, height=150)
    c_cost, c_bal = st.columns(2)
    c_cost.metric("This submit", f"{credits:,} credits" if credits is not None else "—",
                  help="Credits × US$0.005, from lib/pricing for exactly these settings.")
    c_bal.metric("Balance", f"{balance:,.2f}" if balance is not None else "—")
    bound(st.number_input, "Per-submit limit (credits, 0 = none)", "compose_limit", min_value=0, step=50)
    token = S["compose_click_token"]
    reasons = cp.needs_confirmation(credits, balance, int(form["compose_limit"]))
    confirmed = True
    if reasons:
        st.warning(" ".join(reasons), icon="💸")
        confirmed = st.checkbox("Submit anyway", key=f"compose_confirm_{token}")
    if untouched:
        st.caption("✍️ Write a prompt (or switch on Multi-shot) to begin: every rule is checked as you type.")
    elif errors:
        st.caption(f"⛔ {len(errors)} error(s) to fix before submitting (shown next to their fields).")
    clicked = st.button(cp.submit_label(len(variants), credits), key=f"compose_submit_{token}", type="primary",
                        disabled=bool(errors) or not variants or not confirmed, use_container_width=True)
    if st.button("Dry run (validate only, spends nothing)", key="compose_dry_run_btn", use_container_width=True):
        S["compose_dry_run"] = cp.dry_run(payloads or [payload], balance=balance, limit=int(form["compose_limit"]),
                                          extra=cp.form_problems(form, element_names), pending_uploads=pending_uploads)
    if S["compose_dry_run"] is not None:
        report = S["compose_dry_run"]
        (st.error if report.errors else st.success)(md(report.summary()))
        for problem in report.errors + report.warnings:
            st.caption(f"{'⛔' if problem.level == rules.ERROR else '⚠️'} {md(problem.path or 'request')}: "
                       f"{md(problem.message)}")
    if clicked:
        if S["compose_guard"].claim(token):
            with st.spinner("Uploading elements if needed and creating the task(s)…"):
                result = cp.submit_variants(ctx.client, get_ledger(ctx), get_library(ctx), get_uploader(ctx),
                                            variants, origin=ctx.origin, limiter=get_rate_limiter(ctx),
                                            now=service_now(ctx))
            S["compose_followed"] = S["compose_followed"] + result.task_ids
            S["compose_last_result"] = {"batch": result.batch_id, "ids": result.task_ids, "messages": result.messages}
            S["compose_dry_run"] = None
            refresh_balance(ctx)
            S["compose_click_token"] = secrets.token_hex(8)
            st.rerun()
        st.info("That click was already submitted: nothing new was created.")
    last = S["compose_last_result"]
    if last:
        if last["ids"]:
            st.success(f"Submitted {len(last['ids'])} task(s) in batch `{last['batch']}`. Progress is below.")
        for message in last["messages"]:
            st.error(md(message))

    st.subheader("Request preview")
    shown = payload
    if len(variants) > 1:
        pick = st.selectbox("Variant", list(range(len(variants))), format_func=lambda i: variants[i].label,
                            key="compose_w_preview_pick")
        shown = payloads[min(pick or 0, len(payloads) - 1)]
    tab_json, tab_curl, tab_py = st.tabs(["JSON", "cURL", "Python"])
    # a fixed height scrolls a long prompt inside the preview, so Submit's progress below stays in reach
    tab_json.container(height=PREVIEW_PX, border=False).json(shown)
    tab_curl.container(height=PREVIEW_PX, border=False).code(cp.curl_command(shown, ctx.settings.api_base),
                                                               language="bash")
    tab_py.container(height=PREVIEW_PX, border=False).code(cp.python_snippet(shown, ctx.settings.api_base),
                                                             language="python")
    st.caption("The key is never shown: the snippets read it from KIE_API_KEY.")


STATE_ICONS = {"queued": "🕓", "running": "⚙️", "succeeded": "✅", "failed": "❌", "unknown": "❓"}


def _progress_card(row: Any) -> None:
    with st.container(border=True):
        st.markdown(f"{STATE_ICONS.get(row.state, '')} **{row.state}** · {md_line(row.task_id)}  \n"
                    f"{md_line(row.mode)}{' · sound' if row.sound else ''} · {row.duration or '?'} s · "
                    f"{cp.elapsed_s(row)} s elapsed · batch {md_line(row.batch_id)} · "
                    f"[History](/{details_link(row.task_id)})")
        video = existing_video(ctx.settings.data_dir, row.task_id)
        if row.state == "succeeded" and (source := cp.video_source(row, ctx.settings.data_dir)):
            st.video(source)
            if video is not None:
                # read only when clicked: this card redraws every 2 s while other tasks run
                st.download_button("Download MP4", lambda: video.read_bytes(), file_name=f"{safe_id(row.task_id)}.mp4",
                                   mime="video/mp4", key=f"compose_dl_{row.task_id}")
            elif link := link_target(row.result_url):
                st.link_button(f"Download MP4 from {link[1]}", link[0])
        elif row.state == "failed":
            st.error(f"KIE's reason ({md(row.fail_code or 'no code')}): {md(row.fail_msg or 'none given')}")
            st.caption(f"Fix: {md(cp.failure_fix(row.fail_code))}")
        elif row.state == "unknown":
            st.warning(md(row.fail_msg))


def _progress() -> None:
    rows = cp.followed_rows(get_ledger(ctx), S["compose_followed"])
    cols = st.columns(2)
    for i, row in enumerate(rows):
        with cols[i % 2]:
            _progress_card(row)
    if st.session_state.get("compose_progress_ticking") and not any(not r.finished for r in rows):
        st.session_state["compose_progress_ticking"] = False
        st.rerun(scope="app")


if S["compose_followed"]:
    st.subheader("Progress of this session's tasks")
    ticking = any(not r.finished for r in cp.followed_rows(get_ledger(ctx), S["compose_followed"]))
    S["compose_progress_ticking"] = ticking
    st.fragment(_progress, run_every=2.0 if ticking else None)()
