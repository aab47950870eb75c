"""Every label with its image count, searchable; a label opens its images on the Search page."""

from __future__ import annotations

import streamlit as st

from indexer.catalog import Query
from ui.common import SEARCH_PAGE, catalog, md, quoted

SHOWN = 300
COLUMNS = 4


def main() -> None:
    cat = catalog()
    st.title("Labels")
    text = st.text_input("Find a label", key="q", placeholder="cat, coffee, vehicle…", bind="query-params")
    with st.spinner("Counting…"):
        facets = cat.facets(Query(), size=100_000)
    if not facets:
        st.info("The catalogue is empty. Index some photos: `pixdex index ~/Pictures`.")
        return
    wanted = text.strip().casefold()
    found = [(n, c) for n, c in facets if wanted in n.casefold()]
    st.caption(f"{len(found)} of {len(facets)} labels" + (f"; the first {SHOWN} shown" if len(found) > SHOWN else ""))
    if not found:
        st.info(f"No label contains {quoted(text)}.")
    shown = found[:SHOWN]
    per_column = -(-len(shown) // COLUMNS)
    for col, start in zip(st.columns(COLUMNS), range(0, len(shown), per_column or 1), strict=False):
        with col:
            for name, count in shown[start:start + per_column]:
                st.page_link(SEARCH_PAGE, label=f"{md(name)} · {count}", query_params={"q": f'"{name}"'})


main()
