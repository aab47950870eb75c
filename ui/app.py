"""The pixdex app: `pixdex ui` runs this file; each page is a module of its own in ui/."""

from __future__ import annotations

import streamlit as st

from ui.common import user

st.set_page_config(page_title="pixdex", page_icon=":frame_with_picture:", layout="wide")
who = user()
if who is None:  # sign-in is configured ([auth] in secrets.toml) and nobody is signed in
    st.title("pixdex")
    st.button("Sign in", on_click=st.login, type="primary")
    st.stop()
if who != "local":
    st.sidebar.caption(f"Signed in as {who}")
    st.sidebar.button("Sign out", on_click=st.logout)
st.navigation([
    st.Page("search.py", title="Search", icon=":material/search:", default=True),
    st.Page("image.py", title="Image", icon=":material/image:", url_path="image"),
    st.Page("labels.py", title="Labels", icon=":material/label:", url_path="labels"),
    st.Page("review.py", title="Review", icon=":material/fact_check:", url_path="review"),
    st.Page("upload.py", title="Upload", icon=":material/upload:", url_path="upload"),
    st.Page("stats.py", title="Stats", icon=":material/bar_chart:", url_path="stats"),
], position="top").run()
