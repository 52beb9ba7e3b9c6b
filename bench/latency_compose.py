"""Compose rows of bench/browser_latency.py (issue 17: each ≤ 1.5× a bare click)."""

from __future__ import annotations

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


def _other(values: tuple[str, str], current: str) -> str:
    """The value of the two that the page does not show now (each page flips its own: a run with --against
    times two pages in turn)."""
    return values[1] if current == values[0] else values[0]


def _edit_seconds(page: Page) -> None:
    box = page.get_by_label("Seconds").first
    box.fill(_other(("4", "3"), box.input_value()))
    box.press("Tab")  # a number input commits on blur


def _pick_mode(page: Page) -> None:
    radio = page.locator('[data-testid="stRadio"]').filter(has_text="Mode")
    checked = radio.locator("label:has(input:checked)").inner_text()
    radio.get_by_text(_other(("pro", "std"), checked.split("\u00a0")[0].strip()), exact=False).first.click()


def _type_prompt(page: Page) -> None:
    box = page.get_by_label("Prompt", exact=True)
    box.fill(_other(("a heron lands on a pier at dawn", "a heron takes off over the water"), box.input_value()))
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
