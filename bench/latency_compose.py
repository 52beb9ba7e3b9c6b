"""Compose rows of bench/browser_latency.py."""

from __future__ import annotations

from _latency import Interaction, Page, settle

MULTI = "Multi-shot (up to 5 shots)"
ADD = "➕ Add shot"
REMOVE = "✕ Remove"


def _multi_on(page: Page) -> None:
    if not page.get_by_role("button", name=ADD).count():
        page.get_by_text(MULTI).click()
        settle(page)


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


INTERACTIONS = [
    Interaction("Compose: toggle Multi-shot", "Compose", _toggle_multi),
    Interaction("Compose: add a shot", "Compose", _add_shot, setup=_multi_on, before=_keep_room),
    Interaction("Compose: remove a shot", "Compose", _remove_shot, setup=_multi_on, before=_keep_two),
]
