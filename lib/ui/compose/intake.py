"""What fills the Compose form from outside: History's Fork, recipes, drafts and the form's own address."""

from __future__ import annotations

from typing import Any

import streamlit as st

from lib.compose import form as cp
from lib.compose.drafts import new_form_id, valid_form_id
from lib.elements.model import Element
from lib.history.transfer import read_recipe
from lib.kling.job import job_from_payload
from lib.trust.text import md, md_line
from lib.ui.compose.state import FORM_PARAM, S, edit
from lib.ui.context import AppContext


def take_handoffs(elements: list[Element]) -> None:
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
        edit(cp.insert_reference, name)
    S["compose_pending_insert"] = []


def header() -> None:
    """The title, what the page does, and where the form came from (a fork, a recipe)."""
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


def drafts(ctx: AppContext) -> None:
    """Save the form as a named draft, or open or delete one."""
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


def recipe() -> None:
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


def open_address(ctx: AppContext) -> None:
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


def keep_address(ctx: AppContext, form: dict[str, Any]) -> None:
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


def pending_toast() -> None:
    """A toast queued before an st.rerun() (a toast drawn just before a rerun would be lost)."""
    if S["compose_toast"]:
        text, icon = S["compose_toast"]
        S["compose_toast"] = None
        st.toast(text, icon=icon)


