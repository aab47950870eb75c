"""Search, the home page. With no query: the newest images. The query lives in the URL (every
widget is bound to a query parameter), so a search can be shared and reloaded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from indexer.catalog import CatalogError, Query, Sort
from ui.common import catalog, grid, settings

PAGE_SIZE = 24
FACETS = 15


@st.cache_data(ttl=60, show_spinner=False)
def label_options(url: str) -> list[str]:
    """Every label in the catalogue `url`, most common first (the autocomplete list; kept a minute)."""
    return [name for name, _ in catalog().facets(Query(), size=5000)]


def refine(label: str) -> None:
    """A facet was clicked: require that label too."""
    chosen = st.session_state.get("all") or []
    if label not in chosen:
        st.session_state["all"] = [*chosen, label]


def to_utc(day: date, end: bool = False) -> datetime:
    return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)


def query_from_widgets(options: list[str]) -> Query:
    main, side = st.columns([3, 1])
    labels = dict(options=options, filter_mode="contains", accept_new_options=True, bind="query-params")
    all_of = main.multiselect("Labels: all of these", key="all", placeholder="Type a label: cat, coffee, vehicle…",
                              **labels)
    min_conf = side.slider("Minimum confidence", 0.0, 1.0, 0.0, 0.05, key="min", bind="query-params")
    with st.expander("More filters", expanded=bool(set(st.query_params) - {"all", "min", "after", "page"})):
        a, b = st.columns(2)
        any_of = a.multiselect("Any of these", key="any", placeholder="at least one", **labels)
        none_of = b.multiselect("None of these", key="not", placeholder="exclude", **labels)
        c, d, e = st.columns([2, 2, 1])
        source = c.text_input("Source prefix", key="source", placeholder="s3://bucket/photos/ or file:///home/",
                              bind="query-params")
        dates = d.date_input("Indexed between", value=(), key="dates", format="YYYY-MM-DD")
        sort = e.selectbox("Sort", ["auto", "date", "confidence"], key="sort", bind="query-params",
                           help="auto: best match first when labels are chosen, else newest first")
    labelled = bool(all_of or any_of)
    order = Sort(sort) if sort != "auto" else (Sort.CONFIDENCE if labelled else Sort.DATE)
    since = to_utc(dates[0]) if len(dates) >= 1 else None
    until = to_utc(dates[1], end=True) if len(dates) == 2 else None
    return Query(all_of=tuple(all_of), any_of=tuple(any_of), none_of=tuple(none_of), min_confidence=min_conf,
                 source_prefix=source.strip() or None, since=since, until=until, sort=order, limit=PAGE_SIZE)


def main() -> None:
    cat = catalog()
    st.title("pixdex")
    if deleted := st.session_state.pop("deleted", None):
        st.toast(f"Deleted {deleted} from the catalogue")
    options = label_options(settings().catalog)
    try:
        query = query_from_widgets(options)
    except ValueError as exc:  # the query's bounds (at most 32 labels): a message, never a traceback
        st.error(f"This search cannot be run: {exc}. Remove some labels.")
        return

    # pages: the current page's cursor is in the URL (`after`); earlier ones are kept for "Previous"
    key = repr(query)  # everything the widgets chose (the cursor comes from the URL below)
    if st.session_state.get("query") != key:
        if "query" in st.session_state:  # the query changed: back to its first page
            st.query_params.pop("after", None)
            st.query_params.pop("page", None)
        st.session_state.query, st.session_state.previous = key, []
    after = st.query_params.get("after")
    number = int(st.query_params.get("page", "1")) if after and st.query_params.get("page", "").isdigit() else 1
    try:
        with st.spinner("Searching…"):
            page = cat.search(replace(query, cursor=after))
            facets = cat.facets(query, size=FACETS + len(query.all_of))
    except CatalogError as exc:
        st.error(f"The search failed: {exc}")
        if after:
            st.query_params.pop("after", None)
        return

    if page.total == 0:
        if options:
            st.info("No image matches. Remove a label, lower the minimum confidence, or clear the other filters.")
        else:
            st.info("The catalogue is empty. Index some photos: `pixdex index ~/Pictures`, or use the Upload page.")
        return

    results, side = st.columns([5, 1])
    with results:
        first = (number - 1) * PAGE_SIZE + 1
        st.caption(f"Images {first}–{first + len(page.records) - 1} of {page.total}")
        grid(page.records, query.matched_labels)
        prev_col, _, next_col = st.columns([1, 4, 1])
        if after and prev_col.button("← Previous" if number > 1 else "← First page"):
            previous = st.session_state.previous  # empty after a reload: then back to the first page
            back = previous.pop() if previous and number > 2 else None
            if back:
                st.query_params.update(after=back, page=str(number - 1))
            else:
                st.query_params.pop("after", None)
                st.query_params.pop("page", None)
            st.rerun()
        if page.next_cursor and next_col.button("Next →"):
            if after:
                st.session_state.previous.append(after)
            st.query_params.update(after=page.next_cursor, page=str(number + 1))
            st.rerun()
    with side:
        st.caption("Refine")
        chosen = {name.casefold() for name in query.all_of}
        for name, count in [(n, c) for n, c in facets if n.casefold() not in chosen][:FACETS]:
            st.button(f"{name} · {count}", key=f"facet-{name}", on_click=refine, args=(name,), width="stretch")


main()
