"""What every page shares: the settings, the catalogue and thumbnails (built once per process with
`st.cache_resource`), and the thumbnail grid."""

from __future__ import annotations

import base64
import calendar
import html
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlencode

import streamlit as st

from indexer.catalog import Catalog, CatalogError, Query, Sort, open_catalog
from indexer.model import vocabulary
from indexer.model.labeller import Labeller, make_labeller
from indexer.model.vocabulary import Vocabulary
from indexer.query_language import QueryError, parse
from indexer.record import Record, Status
from indexer.settings import Settings
from indexer.sources.s3 import make_client
from indexer.sources.uris import UriSource
from ui.thumbnails import Thumbnails

IMAGE_PAGE = "image.py"
SEARCH_PAGE = "search.py"
PAGE_SIZE = 24  # images a search page shows
SEARCH_PARAMS = ("q", "min", "source", "sort", "after", "page")  # a search in the URL; the image page keeps them
# the search's sorts as the Sort box offers them (its text is the URL's ?sort=): auto is the query language's default
SORTS: dict[str, Sort | None] = {"auto": None, "date": Sort.DATE, "confidence": Sort.CONFIDENCE,
                                 "taken": Sort.TAKEN}
MONTHS = 12 * 400  # months a timeline or chart counts: every month a camera's clock can give (exif.YEARS)
GRID_COLUMNS = 8  # at most, a row; fewer as the window narrows
GRID_MIN_WIDTH = 100  # px: three a row on a 390 px phone


_MARKDOWN = re.compile(r"([\\`*_\[\]<>$~|!])")  # links, images, code, emphasis, colours, maths
_LINE_START = re.compile(r"^(\s*)(?:([#>+=-])|(\d+)([.)]))")  # a heading, a quote or a list item at the start


def md(text: object) -> str:
    """`text` as it is, inside Streamlit markdown (labels, buttons, messages, titles): the markdown
    characters escaped, so a label, a file name or a query from a URL can make no link, image,
    colour, code or heading of itself (an emoji shortcode, :rocket:, stays: it can do no harm)."""
    escaped = _MARKDOWN.sub(r"\\\1", str(text).replace("\n", " "))
    # nor an autolink: markdown links a bare "http://..." or "www..." even when escaped; a word joiner
    # (U+2060, invisible) between the scheme and "//" keeps it plain text
    escaped = escaped.replace("://", ":\u2060//").replace("www.", "www\u2060.").replace("@", "@\u2060")
    return _LINE_START.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"),
                           escaped)


def quoted(text: object) -> str:
    """A word or query quoted in a message: “cat OR dog”, escaped."""
    return f"“{md(text)}”"


def settings() -> Settings:
    """Read on every run (cheap); what is expensive to build is cached per setting below."""
    return Settings()


@st.cache_resource
def _catalog(url: str, _settings: Settings) -> Catalog:
    return open_catalog(url, _settings)


@st.cache_resource
def _thumbnails(folder: str, _settings: Settings) -> Thumbnails:
    return Thumbnails(Path(folder), UriSource(_settings, threads=8), _settings.limits)


def thumbnails() -> Thumbnails:
    s = settings()
    return _thumbnails(str(s.thumbnails), s)


@st.cache_resource
def _s3(endpoint: str | None, _settings: Settings):
    return make_client(_settings)


def s3():
    """The app's S3 client for writing uploads (clients are thread-safe; one per process)."""
    s = settings()
    return _s3(s.s3_endpoint, s)


@st.cache_resource(show_spinner="Loading the model…")
def _labeller(model: str, _settings: Settings) -> Labeller:
    labeller = make_labeller(_settings.model_settings())
    labeller.load()
    return labeller


def labeller() -> Labeller:
    s = settings()
    return _labeller(repr(s.model_settings()), s)


def words() -> Vocabulary:
    """What typed words mean (the query language reads them through it)."""
    return vocabulary.for_model(settings().model)


def search_of(params: dict[str, str]) -> Query:
    """The search page's query from its URL parameters (SEARCH_PARAMS), for the image page's
    previous/next; a query that cannot be read is no query (the search page says why)."""
    try:
        minimum = float(params.get("min", 0))
        sort = sort_of(params.get("sort", "auto"))
        base = Query(min_confidence=minimum, source_prefix=params.get("source") or None, limit=PAGE_SIZE,
                     cursor=params.get("after"))
        return parse(params.get("q", ""), words(), base, sort).query
    except (QueryError, ValueError):
        return Query()


def sort_of(value: str) -> Sort | None:
    """The sort a ?sort= names: a Sort box choice (SORTS) or a Sort's own name."""
    return SORTS[value] if value in SORTS else Sort(value) if value in tuple(Sort) else None


def undated_count(query: Query) -> int:
    """Matches of `query` without a date taken."""
    return catalog().search(replace(query, has_date=False, limit=1, cursor=None)).total


def month_name(month: str) -> str:
    """`2019-03` as a person reads it: March 2019."""
    year, number = month.split("-")
    return f"{calendar.month_name[int(number)]} {year}"


def photos(n: int) -> str:
    return f"{n:,} photo{'' if n == 1 else 's'}"


def user() -> str | None:
    """Who is signed in (st.login, when auth is configured in secrets.toml), else "local": the
    single-user mode of an app without sign-in. None: auth is configured, nobody signed in."""
    try:
        configured = "auth" in st.secrets
    except Exception:  # no secrets.toml at all: Streamlit raises its own not-found error
        configured = False
    if not configured:
        return "local"
    if not st.user.get("is_logged_in", False):
        return None
    return st.user.get("email") or st.user.get("name") or "signed-in user"


def catalog() -> Catalog:
    """The catalogue, or a message on screen and the page stopped when it cannot be opened."""
    s = settings()
    try:
        return _catalog(s.catalog, s)
    except CatalogError as exc:
        st.error(f"Cannot open the catalogue: {md(exc)}")
        st.stop()


def grid(records: list[Record], focus: tuple[str, ...] = (), context: dict[str, str] | None = None,
         scores: list[float] | None = None) -> None:
    """Thumbnails in a grid that reflows with the width (8 a row on a desktop, 3 on a phone); the
    thumbnail itself and the caption under it open the image page. The caption: the labels in
    `focus` (what the search matched) first, with their confidences. `context`: the search the
    image page goes back to (its query parameters)."""
    thumbs = thumbnails()
    with st.grid(GRID_COLUMNS, min_column_width=GRID_MIN_WIDTH, gap="small") as cells:
        for n, r in enumerate(records):
            params = {**(context or {}), "id": r.id}
            summary = "FAILED" if r.status == Status.FAILED else r.label_summary(1, focus)
            name = file_name(r.uri)
            with cells.cell():
                data = thumbs.get(r.uri, r.etag)
                if data:  # a link of our own: st.image(link=) opens a new tab
                    alt = html.escape(f"{name}: {summary}" if summary else name, quote=True)
                    href = html.escape(f"{IMAGE_PAGE.removesuffix('.py')}?{urlencode(params)}", quote=True)
                    st.markdown(f'<a href="{href}" target="_self" class="pixdex-tile"><img alt="{alt}" '
                                f'src="data:image/jpeg;base64,{base64.b64encode(data).decode()}" '
                                'style="width:100%;aspect-ratio:1;border-radius:0.5rem;display:block"></a>',
                                unsafe_allow_html=True)
                else:
                    st.markdown(":gray[*(no preview)*]")
                label = summary or name
                if scores is not None:
                    label = f"{scores[n]:.0%} alike · {label}"
                st.page_link(IMAGE_PAGE, label=md(label), query_params=params)


def file_name(uri: str) -> str:
    """The last part of a record's URI as it was named: a file: URI's percent-encoding undone
    (`My Holiday.jpg`, not `My%20Holiday.jpg`); an S3 key is shown as it is."""
    last = uri.rsplit("/", 1)[-1]
    return unquote(last, errors="replace") if uri.startswith("file:") else last
