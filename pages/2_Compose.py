"""Compose: build a Kling 3.0 job with live checks, preview and price it, submit variants, follow them.

The page draws (its parts live in lib/ui/compose/, one module each); lib.compose.evaluate decides (one ComposeView per
rerun).
"""

from __future__ import annotations

import streamlit as st

from lib.elements.model import Element
from lib.ui.compose.intake import drafts, header, open_address, pending_toast, recipe, take_handoffs
from lib.ui.compose.progress import progress_section
from lib.ui.compose.settings import form_column
from lib.ui.compose.state import S, current_view, init_state, part, show, signatures_now
from lib.ui.compose.summary import summary, variants
from lib.ui.context import AppContext, current_balance
from lib.ui.page import setup_page


def _composer(ctx: AppContext, elements: list[Element]) -> None:
    """The form and what depends on it. Each part is its own keyed fragment; the summary (cost, Submit, preview)
    is redrawn after every edit, the other parts only when the edit changed what they show."""
    S["compose_library"] = elements
    current_balance(ctx)  # read before the signatures, which show it
    S["compose_signatures"] = signatures_now()
    part("compose_top", lambda: show(current_view(), "general"))
    left, right = st.columns([3, 2], gap="large")
    with left:
        form_column(ctx)
    with right:
        st.subheader("Cost and submit")
        part("compose_variants", lambda: variants(current_view()))
        summary(ctx)


def main() -> None:
    ctx = setup_page("Compose", "✍️")
    init_state()
    pending_toast()
    elements = ctx.storage.library.list()
    open_address(ctx)
    take_handoffs(elements)
    header()
    drafts(ctx)
    recipe()
    _composer(ctx, elements)
    progress_section(ctx)


main()
