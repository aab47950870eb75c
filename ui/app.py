"""pixdex search page: pick labels, set a minimum confidence, browse the matching thumbnails."""

from __future__ import annotations

import streamlit as st

from indexer.catalog import Catalog, CatalogError, Query, Sort, open_catalog
from indexer.settings import ImageLimits, Settings
from ui.thumbnails import thumbnail

PAGE_SIZE = 24
COLUMNS = 4


@st.cache_resource
def catalog(url: str) -> Catalog:
    return open_catalog(url)


@st.cache_data(max_entries=2048, show_spinner=False)
def cached_thumbnail(uri: str, etag: str | None, limits: ImageLimits) -> bytes | None:
    return thumbnail(uri, limits)


def main() -> None:
    st.set_page_config(page_title="pixdex", page_icon=":frame_with_picture:", layout="wide")
    settings = Settings()
    try:
        cat = catalog(settings.catalog)
    except CatalogError as exc:
        st.error(f"Cannot open the catalogue: {exc}")
        st.stop()

    st.title("pixdex")
    label_options = [name for name, _ in cat.facets(Query(), size=1000)]
    left, right = st.columns([3, 1])
    # "contains", not fuzzy: "cat" must not offer "chocolate syrup"; no "Select all" under Enter
    labels = left.multiselect("Labels (all must match)", label_options, key="labels",
                              placeholder="Type a label: cat, coffee, vehicle…",
                              filter_mode="contains", select_all=False)
    min_conf = right.slider("Minimum confidence", 0.0, 1.0, 0.0, 0.05, key="min_conf")

    query_key = (tuple(labels), min_conf)
    if st.session_state.get("query_key") != query_key:
        st.session_state.query_key = query_key
        st.session_state.cursors = [None]  # cursor of each page seen; the last is the current page
    cursors: list[str | None] = st.session_state.cursors

    sort = Sort.CONFIDENCE if labels else Sort.DATE
    page = cat.search(Query(all_of=tuple(labels), min_confidence=min_conf, sort=sort,
                            limit=PAGE_SIZE, cursor=cursors[-1]))
    if page.total == 0:
        if label_options:
            st.info("No image matches. Remove a label or lower the minimum confidence.")
        else:
            st.info("The catalogue is empty. Index some photos: `pixdex index ~/Pictures`.")
        return

    first = (len(cursors) - 1) * PAGE_SIZE + 1
    st.caption(f"Images {first}–{first + len(page.records) - 1} of {page.total}")
    for row_start in range(0, len(page.records), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, record in zip(cols, page.records[row_start:row_start + COLUMNS], strict=False):
            with col:
                thumb = cached_thumbnail(record.uri, record.etag, settings.limits)
                if thumb:
                    st.image(thumb, width="stretch")
                else:
                    st.markdown("*(no preview)*")
                st.caption(record.label_summary(3, tuple(labels), sep=" · "))

    prev_col, _, next_col = st.columns([1, 4, 1])
    if len(cursors) > 1 and prev_col.button("← Previous"):
        cursors.pop()
        st.rerun()
    if page.next_cursor and next_col.button("Next →"):
        cursors.append(page.next_cursor)
        st.rerun()


main()
