"""The only Streamlit code outside pages: app context, page setup, the sidebar, the follower fragment."""
