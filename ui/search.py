"""Search, the home page: one search box that reads the query language (indexer.query_language),
the query as read shown as removable chips, labels suggested while typing, results in a grid,
facets to refine. With no query: the newest images. The search lives in the URL (?q=, min=, source=,
sort=, the page), so Back, reload and a shared link restore it; the "Indexed between" dates do not
(a date range that matters goes in the text: since:2026-01-01 until:2026-02-01).

Sorted by date taken (the Sort box, or sort:taken), the results are a timeline: grouped under a
header per month taken with that month's count in the whole search, photos without a date last,
and a "Jump to" box that puts a year or a month into the text (taken:2019-03, or no:date), so the
URL holds it like the rest of the search."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby

import streamlit as st

from indexer.catalog import CatalogError, Query, Sort
from indexer.model.vocabulary import normalise
from indexer.query_language import GRAMMAR, Kind, Parsed, QueryError, misses, parse
from indexer.record import Record
from ui.common import (
    MONTHS,
    PAGE_SIZE,
    SEARCH_PARAMS,
    SORTS,
    catalog,
    grid,
    md,
    month_name,
    photos,
    quoted,
    settings,
    sort_of,
    undated_count,
    words,
)

FACETS = 15
UNDATED = "undated"  # the Jump to box's choice for photos without a date taken (no:date)
SUGGESTED = 6  # labels offered for the word being typed
LEGACY = ("all", "any", "not")  # links from before the search box: ?all=cat&not=dog
# facets beside the results on a desktop, above them (folded) on a phone: both are drawn, CSS shows one
LAYOUT_CSS = """<style>
@media (max-width: 640px) { .st-key-facets-side { display: none; } }
@media (min-width: 641px) { .st-key-facets-top { display: none; } }
</style>"""


@st.cache_data(ttl=60, show_spinner=False)
def label_counts(url: str) -> dict[str, int]:
    """Every label in the catalogue `url` with its image count (suggestions and hints; kept a minute)."""
    return dict(catalog().facets(Query(), size=5000))


def fold_legacy_links() -> None:
    """?all=cat&any=..&not=.. (links from before the search box) become the query text, once."""
    params = st.query_params
    if "q" in params or not any(k in params for k in LEGACY):
        return
    quoted = {k: [f'"{v.replace(chr(34), "")}"' for v in params.get_all(k) if v.replace('"', "").strip()]
              for k in LEGACY}
    parts = [*quoted["all"], " OR ".join(quoted["any"]), *(f"-{v}" for v in quoted["not"])]
    for k in LEGACY:
        if k in params:
            del params[k]
    params["q"] = st.session_state["q"] = " ".join(p for p in parts if p)  # the box is drawn after this


def md_hint(message: str) -> str:
    """A parser's message for the page: its `word` spans as quotes, the rest escaped."""
    parts = message.split("`")
    out = "".join(quoted(p) if n % 2 else md(p) for n, p in enumerate(parts))
    return out[:1].upper() + out[1:]


def set_query(text: str) -> None:
    """A chip, a suggestion or a facet was clicked: the search box's new text (callbacks run first)."""
    st.session_state["q"] = text


def to_utc(day: date, end: bool = False) -> datetime:
    return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)


def filters() -> tuple[Query, Sort | None]:
    """What the "More filters" controls choose (the text's own fields win over them)."""
    with st.expander("More filters", expanded=bool(set(st.query_params) & {"min", "source", "sort"})):
        a, b, c, d = st.columns([2, 2, 2, 1])
        min_conf = a.slider("Minimum confidence", 0.0, 1.0, 0.0, 0.05, key="min", bind="query-params",
                            help="of the labels searched for; labels are stored only above their own threshold")
        source = b.text_input("Source prefix", key="source", placeholder="s3://bucket/photos/ or file:///home/",
                              bind="query-params")
        dates = c.date_input("Indexed between", value=(), key="dates", format="YYYY-MM-DD")
        sort = d.selectbox("Sort", list(SORTS), key="sort", bind="query-params",
                           help="auto: best match first when labels are searched, else newest first; date: newest "
                                "indexed first; taken: newest photo taken first, grouped by month, undated last")
    since = to_utc(dates[0]) if len(dates) >= 1 else None
    until = to_utc(dates[1], end=True) if len(dates) == 2 else None
    base = Query(min_confidence=min_conf, source_prefix=source.strip() or None, since=since, until=until,
                 limit=PAGE_SIZE)
    return base, sort_of(sort)


def typing(text: str, counts: dict[str, int]) -> None:
    """Labels of the catalogue for the word being typed (`butt` -> butterfly · 3), most images first."""
    if not text or text.endswith(" ") or (text.endswith('"') and text.count('"') % 2 == 0):
        return
    if text.count('"') % 2:  # inside quotes: the phrase since the open quote is what is being typed
        at = text.rindex('"')
        head, last = text[:at].rstrip(), text[at:]
        if last.startswith('"') and at > 0 and text[at - 1] == "-":
            head, last = text[:at - 1].rstrip(), "-" + last
    else:
        head, _, last = text.rpartition(" ")
    key = normalise(last.lstrip("-").lstrip('"'))
    if len(key) < 2 or ":" in key or key in ("or", "not"):
        return
    found = [n for n in counts if normalise(n).startswith(key) or any(w.startswith(key) for w in normalise(n).split())]
    found = sorted(found, key=lambda n: (-counts[n], n))[:SUGGESTED]
    if not found or found == [last]:
        return
    sign = "-" if last.startswith("-") else ""
    with st.container(horizontal=True, key="typing"):
        st.caption("Labels:", width="content")
        for name in found:
            written = f'{sign}"{name}"' if " " in name else f"{sign}{name}"
            st.button(f"{md(name)} · {counts[name]}", key=f"typing-{name}", type="tertiary", on_click=set_query,
                      args=((f"{head} {written}" if head else written) + " ",))


def chips(parsed: Parsed) -> None:
    """The query as read, one removable chip per label and field: what the box understood."""
    if not (parsed.terms or parsed.fields or parsed.prefix):
        return
    with st.container(horizontal=True, key="chips"):
        for i, term in enumerate(parsed.terms):
            shown = {Kind.ALL: term.label, Kind.ANY: f"{term.label} (or)", Kind.NOT: f"not {term.label}"}[term.kind]
            st.button(f"{md(shown)}  ✕", key=f"chip-{i}", help=f"typed: {md(term.typed)}; click to remove",
                      on_click=set_query, args=(parsed.without_term(i),))
        for name, value in parsed.fields:
            st.button(f"{name}:{md(value)}  ✕", key=f"chip-{name}", on_click=set_query,
                      args=(parsed.without_field(name),))
        if parsed.prefix:
            st.caption(f"labels with a word starting {quoted(parsed.prefix)}", width="content")


def did_you_mean(parsed: Parsed, counts: dict[str, int]) -> bool:
    """For each word that is neither in the vocabulary nor a label of the catalogue: a message
    (what `hint` says in the CLI and the API) and the labels it may mean, as buttons."""
    found = misses(parsed, words(), list(counts))
    if not found:
        return False
    st.info(" ".join(f"No label {quoted(word)}; did you mean " + " or ".join(quoted(o) for o in options) + "?"
                     if options else f"No label {quoted(word)}, nor one like it." for _, word, options in found))
    offers = [(i, option) for i, _, options in found for option in options]
    with st.container(horizontal=True, key="did-you-mean"):
        for i, option in offers:
            label = words().resolve(option)
            count = counts.get(label)
            st.button(f"{md(option)} · {count}" if count else md(option), key=f"mean-{i}-{option}",
                      on_click=set_query, args=(parsed.replacing(i, label),))
    return True


def facets_panel(parsed: Parsed, facets: list[tuple[str, int]], where: str) -> None:
    chosen = {name.casefold() for name in parsed.query.all_of}
    for name, count in [(n, c) for n, c in facets if n.casefold() not in chosen][:FACETS]:
        st.button(f"{md(name)} · {count}", key=f"facet-{where}-{name}", on_click=set_query, args=(parsed.adding(name),),
                  width="stretch")


def jump_to(parsed: Parsed) -> None:
    """A select box of the years and months the search has photos of (and "No date taken"), newest
    first, with their counts; a choice becomes the text's taken: (or no:date) field."""
    fields = dict(parsed.fields)
    undated_now = "date" in fields.get("no", "").lower().split(",")
    current = UNDATED if undated_now else fields.get("taken", "")
    every = replace(parsed.query, taken_since=None, taken_until=None, has_date=None, cursor=None)  # what it jumps among
    months = catalog().counts(every, "month_taken", size=MONTHS)
    years: dict[str, int] = {}
    for month, n in months:
        years[month[:4]] = years.get(month[:4], 0) + n
    counts = {"": 0, **{y: years[y] for y in sorted(years, reverse=True)}}
    options = [""]
    for year in counts:
        if year:
            options += [year, *sorted((m for m, _ in months if m.startswith(year)), reverse=True)]
    counts.update(months)
    undated = undated_count(every)
    if undated:
        options.append(UNDATED)
        counts[UNDATED] = undated
    if current not in options:  # a range typed (taken:2018..2020): shown as it is
        options.insert(1, current)

    def shown(option: str) -> str:
        if not option:
            return "All dates"
        if option == UNDATED:
            return f"No date taken · {photos(counts[option])}"
        if option not in counts:
            return f"taken:{option}"
        name = option if len(option) == 4 else f"\u2003{month_name(option)}"  # months indented under their year
        return f"{name} · {photos(counts[option])}"

    key = f"jump-{parsed.text()}"  # a new box for each search: it shows that search's choice

    def jumped() -> None:
        choice = st.session_state[key]
        keep = []  # the search's other fields, no:location among them
        for name, value in parsed.fields:
            if name in ("has", "no"):  # the jump decides has/no:date; has:location, no:location stay
                value = ",".join(v for v in value.split(",") if v.lower() != "date")
            if name != "taken" and value:
                keep.append((name, value))
        add = () if not choice else (("no", "date"),) if choice == UNDATED else (("taken", choice),)
        set_query(replace(parsed, fields=(*keep, *add)).text())

    st.selectbox("Jump to", options, index=options.index(current), key=key, format_func=shown, on_change=jumped,
                 help="a year or a month taken (taken:2019-03 in the search), or the photos without a date")


def timeline(parsed: Parsed, records: list[Record], context: dict[str, str]) -> None:
    """The page's records under a header per month taken ("March 2019 · 12 photos", that month's
    matches in the whole search), then those without a date ("No date taken · 3")."""
    months = dict(catalog().counts(parsed.query, "month_taken", size=MONTHS))
    undated = undated_count(parsed.query) if any(r.taken_at is None for r in records) else 0  # counted before drawing
    for month, group in groupby(records, key=lambda r: f"{r.taken_at.astimezone(UTC):%Y-%m}" if r.taken_at else None):
        if month is None:
            st.subheader(f"No date taken · {photos(undated)}", anchor=False)
        else:
            st.subheader(f"{month_name(month)} · {photos(months.get(month, 0))}", anchor=False)
        grid(list(group), parsed.query.matched_labels, context)



def _page_number(typed: str) -> int:
    """The page number a link carries, 1 for anything else (`page=²` passes isdigit, not int())."""
    return int(typed) if typed.isascii() and typed.isdigit() and 0 < len(typed.lstrip("0")) <= 6 else 1


def main() -> None:
    cat = catalog()
    st.title("pixdex")
    st.html(LAYOUT_CSS)
    if deleted := st.session_state.pop("deleted", None):
        st.toast(f"Deleted {md(deleted)} from the catalogue")
    fold_legacy_links()
    counts = label_counts(settings().catalog)
    bar = st.container(horizontal=True, vertical_alignment="center", key="search-bar")  # a row on a phone too
    text = bar.text_input("Search", key="q", bind="query-params", type="search", live="600ms", max_chars=None,
                          placeholder="Search: cat, beach -people, cat OR dog, \"black and white\"…",
                          label_visibility="collapsed")
    with bar.popover("", icon=":material/help:", help="How to search"):
        st.code(GRAMMAR, language=None)
    st.set_page_config(page_title=f"{text[:60]} · pixdex" if text else "pixdex")  # the box's text, after callbacks
    typing(text, counts)
    base, sort = filters()
    try:
        parsed = parse(text, words(), base, sort)
    except QueryError as exc:  # too long, too many labels, a field that is not one: a message, never a traceback
        st.error(f"This search cannot be run: {md_hint(str(exc))}")
        return
    chips(parsed)

    # pages: the current page's cursor is in the URL (`after`); earlier ones are kept for "Previous"
    key = repr(parsed.query)
    if st.session_state.get("query") != key:
        if "query" in st.session_state:  # the query changed: back to its first page
            st.query_params.pop("after", None)
            st.query_params.pop("page", None)
        st.session_state.query, st.session_state.previous = key, []
    after = st.query_params.get("after")
    number = _page_number(st.query_params.get("page", "")) if after else 1
    try:
        with st.spinner("Searching…"):
            page = cat.search(replace(parsed.query, cursor=after))
            facets = cat.facets(parsed.query, size=FACETS + len(parsed.query.all_of))
    except CatalogError as exc:
        st.error(f"The search failed: {md(exc)}")
        if after:
            st.query_params.pop("after", None)
        return

    hinted = did_you_mean(parsed, counts)
    if page.total == 0:
        if not counts:
            st.info("The catalogue is empty. Index some photos: `pixdex index ~/Pictures`, or use the Upload page.")
        elif not hinted:
            st.info(f"No image matches {quoted(parsed.text())}. Remove a label (click its chip), lower the minimum "
                    "confidence, or clear the other filters.")
        return

    with st.expander("Refine", expanded=False, key="facets-top"):
        facets_panel(parsed, facets, "top")
    results, side = st.columns([6, 1])
    with results:
        first = (number - 1) * PAGE_SIZE + 1
        order = {Sort.CONFIDENCE: "best match first", Sort.TAKEN: "newest taken first, undated last"}.get(
            parsed.query.sort, "newest first")
        st.caption(f"Images {first}–{first + len(page.records) - 1} of {page.total} · {order}")
        context = {k: st.query_params[k] for k in SEARCH_PARAMS if k in st.query_params}
        if parsed.query.sort != Sort.TAKEN:
            grid(page.records, parsed.query.matched_labels, context)
        else:
            try:  # each counts before it draws: a catalogue that fails them leaves the plain grid
                jump_to(parsed)
                timeline(parsed, page.records, context)
            except CatalogError as exc:
                st.caption(f"The months cannot be counted now ({md(str(exc))}).")
                grid(page.records, parsed.query.matched_labels, context)
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
    with side, st.container(key="facets-side"):
        st.caption("Refine")
        facets_panel(parsed, facets, "side")


main()
