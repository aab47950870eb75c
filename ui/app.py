"""The pixdex app: `pixdex ui` runs this file; each page is a module of its own in ui/."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="pixdex", page_icon=":frame_with_picture:", layout="wide")
st.navigation([
    st.Page("search.py", title="Search", icon=":material/search:", default=True),
    st.Page("image.py", title="Image", icon=":material/image:", url_path="image"),
    st.Page("labels.py", title="Labels", icon=":material/label:", url_path="labels"),
    st.Page("upload.py", title="Upload", icon=":material/upload:", url_path="upload"),
], position="top").run()
