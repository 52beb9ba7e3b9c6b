"""History page."""

from __future__ import annotations

import streamlit as st

from lib.ui import setup_page

ctx = setup_page("History", "🗂️")
st.title("🗂️ History")
