"""Kling Studio home: what the app does, the mode, links to the pages and recent activity."""

from __future__ import annotations

import streamlit as st

from lib.ui.page import recent_activity, setup_page


def main() -> None:
    ctx = setup_page("Home", "🎬")
    st.title("🎬 Kling Studio")
    st.write(
        "Prototype **Kling 3.0** videos through KIE.ai: keep reusable **elements**, compose single- or multi-shot "
        "jobs with every Kling 3.0 rule checked *before* anything is spent, and keep every run in a **history** "
        "that survives refreshes, restarts and expired links."
    )
    if ctx.settings.sandbox:
        st.info("You are in **Sandbox mode**: an offline KIE runs on this machine and renders an animatic of your "
                "shots. Nothing is spent. Set `KIE_API_KEY` (or paste a key in the sidebar) to go live.", icon="🧪")

    cols = st.columns(3)
    with cols[0]:
        st.page_link("pages/1_Elements.py", label="**Elements** — reusable characters and objects", icon="🧩")
        st.caption("2–4 reference images or one video each, used in prompts as `@name`. Re-uploaded before KIE's 3-day expiry.")
    with cols[1]:
        st.page_link("pages/2_Compose.py", label="**Compose** — build and submit a job", icon="✍️")
        st.caption("Shots, frames, mode, sound; the exact payload and its cost before you submit; live progress.")
    with cols[2]:
        st.page_link("pages/3_History.py", label="**History** — every job ever submitted", icon="🗂️")
        st.caption("Status, results played from a local archive, compare, fork, export and import.")

    st.subheader("Recent activity")
    recent_activity(ctx)


main()
