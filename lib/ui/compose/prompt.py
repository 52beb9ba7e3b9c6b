"""The prompt half of the Compose form: the Multi-shot switch, element chips, the single prompt or the shots."""

from __future__ import annotations

from typing import Any

import streamlit as st

from lib.compose import form as cp
from lib.compose.evaluate import ComposeView
from lib.compose.sections import SHOTS_SHOWN, slot_key, slot_notes_key
from lib.kling import rules
from lib.kling.job import prompt_budget_length
from lib.trust.text import md_line
from lib.ui.compose.state import S, bound, changed, current_view, edit, part, shot_widget, show, sync_shot
from lib.ui.mention import mention_autocomplete


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
                                   help=md_line(element.description, 200), on_click=changed,
                                   args=(edit, cp.insert_reference, element.name))


def _single_prompt() -> None:
    part("compose_single", lambda: bound(
        st.text_area, "Prompt", "compose_prompt", height=140,
        placeholder="A corgi runs along a beach at sunset, camera tracking low. Use @name for elements."))
    part("compose_single_notes", _single_notes)


def _single_notes() -> None:
    view = current_view()
    st.caption(f"{prompt_budget_length(view.form['compose_prompt']):,} / {rules.PROMPT_MAX_CHARS:,} characters "
               f"(each @element counts as {rules.ELEMENT_REFERENCE_CHARS})")
    show(view, "prompt")


def _shot(view: ComposeView, i: int, shot: dict[str, Any], count: int) -> None:
    with st.container(border=True):
        for field in ("prompt", "duration"):
            S[shot_widget(i, field)] = shot[field]
        typed = {"shown": slot_key(i)}  # the slot draws these widgets and nothing that changes with them
        st.text_area(f"Shot {i + 1}", key=shot_widget(i, "prompt"), height=80,
                     on_change=changed, args=(sync_shot, shot["id"], "prompt", shot_widget(i, "prompt")),
                     kwargs=typed)
        c_len, c_up, c_down, c_del = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
        # no min/max here: the widget would show 13 while the form keeps 4; the rules report the range instead
        c_len.number_input("Seconds", step=1, key=shot_widget(i, "duration"), on_change=changed,
                           args=(sync_shot, shot["id"], "duration", shot_widget(i, "duration")), kwargs=typed)
        c_up.button("↑ Up", key=f"compose_up_{i}", disabled=i == 0, use_container_width=True,
                    on_click=changed, args=(edit, cp.move_shot, i, -1))
        c_down.button("↓ Down", key=f"compose_down_{i}", disabled=i == count - 1,
                      use_container_width=True, on_click=changed, args=(edit, cp.move_shot, i, 1))
        c_del.button("✕ Remove", key=f"compose_del_{i}", use_container_width=True,
                     on_click=changed, args=(edit, cp.remove_shot, i))
        part(slot_notes_key(i), lambda: show(current_view(), f"shot{i}"))


def _chip_target() -> None:
    view = current_view()
    shots = view.form["compose_shots"]
    if view.elements and shots:
        S["compose_active_shot"] = min(S["compose_active_shot"], len(shots) - 1)
        bound(st.selectbox, "Element chips insert into", "compose_active_shot", options=list(range(len(shots))),
              format_func=lambda i: f"Shot {i + 1}")


def _shot_slot(i: int) -> None:
    """Slot i of the shot list, always drawn (empty past the last shot), so adding, editing or moving a shot
    redraws the slots it changed and not the others (lib.compose.sections)."""
    view = current_view()
    shots = view.form["compose_shots"]
    if i < len(shots):
        _shot(view, i, shots[i], len(shots))


def _add_shot() -> None:
    st.button("➕ Add shot", key="compose_add_shot", disabled=len(S["compose_shots"]) >= rules.SHOTS_MAX,
              on_click=changed, args=(edit, cp.add_shot))


def _timeline() -> None:
    view = current_view()
    st.markdown(cp.timeline_html(view.form["compose_shots"]), unsafe_allow_html=True)  # numbers the app computed only
    show(view, "shots")


def _shots() -> None:
    part("compose_chip_target", _chip_target)
    for i in range(SHOTS_SHOWN):
        part(slot_key(i), lambda i=i: _shot_slot(i))
    part("compose_add_shot", _add_shot)
    part("compose_timeline", _timeline)



def _prompt_body() -> None:
    """The single prompt, or the shots: what the Multi-shot switch swaps."""
    if current_view().form["compose_multi"]:
        _shots()
    else:
        _single_prompt()


def prompt_part() -> None:
    """The switch, the element chips and the prompt (or shots), each a part: toggling redraws the prompt and the
    chips' caption, not the switch itself, the chips or the `@` autocomplete."""
    part("compose_multi_switch", lambda: bound(
        st.toggle, "Multi-shot (up to 5 shots)", "compose_multi",
        help="Several shots with their own prompt and length, rendered as one video."))
    part("compose_chips_caption", lambda: _chips_caption(current_view()))
    part("compose_chips", lambda: _chips(current_view()))
    part("compose_prompt_body", _prompt_body)
    part("compose_mention", lambda: _autocomplete(current_view()))



def _autocomplete(view: ComposeView) -> None:
    """`@` in the prompt, a shot or a prompt variant offers the library's names (the browser side of the widgets)."""
    # every field it may serve, drawn or not (it listens on the document): adding a shot or toggling Multi-shot
    # does not redraw it
    keys = ["compose_w_prompt", "compose_w_prompt_variants", *(shot_widget(i, "prompt") for i in range(SHOTS_SHOWN))]
    mention_autocomplete(keys, view.element_names, key="compose_mention")


