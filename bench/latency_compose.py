"""Compose rows of bench/browser_latency.py (issue 17: each ≤ 1.5× a bare click)."""

from __future__ import annotations

import itertools

from _latency import Interaction, Page, settle

MULTI = "Multi-shot (up to 5 shots)"
ADD = "➕ Add shot"
REMOVE = "✕ Remove"
DOWN = "↓ Down"
VARIANTS = "Variants — "


def _multi_on(page: Page) -> None:
    if not page.get_by_role("button", name=ADD).count():
        page.get_by_text(MULTI).click()
        settle(page)


def _two_shots(page: Page) -> None:
    _multi_on(page)
    _keep_two(page)


def _toggle_multi(page: Page) -> None:
    page.get_by_text(MULTI).click()


def _add_shot(page: Page) -> None:
    page.get_by_role("button", name=ADD).click()


def _keep_room(page: Page) -> None:
    if page.get_by_role("button", name=REMOVE).count() >= 4:
        page.get_by_role("button", name=REMOVE).last.click()
        settle(page)


def _remove_shot(page: Page) -> None:
    page.get_by_role("button", name=REMOVE).last.click()


def _keep_two(page: Page) -> None:
    if page.get_by_role("button", name=REMOVE).count() <= 1:
        page.get_by_role("button", name=ADD).click()
        settle(page)


def _move_shot(page: Page) -> None:
    page.get_by_role("button", name=DOWN).first.click()


_SECONDS = itertools.cycle(["4", "3"])


def _edit_seconds(page: Page) -> None:
    box = page.get_by_label("Seconds").first
    box.fill(next(_SECONDS))
    box.press("Tab")  # a number input commits on blur


_MODES = itertools.cycle(["pro", "std"])


def _pick_mode(page: Page) -> None:
    page.locator('[data-testid="stRadio"]').filter(has_text="Mode").get_by_text(next(_MODES), exact=False).first.click()


_PROMPTS = itertools.cycle(["a heron lands on a pier at dawn", "a heron takes off over the water"])


def _type_prompt(page: Page) -> None:
    box = page.get_by_label("Prompt", exact=True)
    box.fill(next(_PROMPTS))
    box.press("Tab")  # leaving the field commits it


def _open_variants(page: Page) -> None:
    page.get_by_text(VARIANTS).first.click()
    page.get_by_label("Takes of each combination").wait_for()


def _close_variants(page: Page) -> None:
    if page.get_by_label("Takes of each combination").is_visible():
        page.get_by_text(VARIANTS).first.click()
        settle(page)


INTERACTIONS = [
    Interaction("Compose: toggle Multi-shot", "Compose", _toggle_multi),
    Interaction("Compose: add a shot", "Compose", _add_shot, setup=_multi_on, before=_keep_room),
    Interaction("Compose: remove a shot", "Compose", _remove_shot, setup=_multi_on, before=_keep_two),
    Interaction("Compose: move a shot", "Compose", _move_shot, setup=_two_shots),
    Interaction("Compose: edit a shot's seconds", "Compose", _edit_seconds, setup=_multi_on),
    Interaction("Compose: pick a mode", "Compose", _pick_mode),
    Interaction("Compose: type a prompt and leave the field", "Compose", _type_prompt),
    Interaction("Compose: open Variants", "Compose", _open_variants, before=_close_variants, reruns=False),
]
