"""What every page shares: the settings, the catalogue and thumbnails (built once per process with
`st.cache_resource`), and the thumbnail grid."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from indexer.catalog import Catalog, CatalogError, open_catalog
from indexer.model.labeller import Labeller, make_labeller
from indexer.record import Record, Status
from indexer.settings import Settings
from indexer.sources.s3 import make_client
from indexer.sources.uris import UriSource
from ui.thumbnails import Thumbnails

IMAGE_PAGE = "image.py"
SEARCH_PAGE = "search.py"


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
        st.error(f"Cannot open the catalogue: {exc}")
        st.stop()


def grid(records: list[Record], focus: tuple[str, ...] = (), columns: int = 4) -> None:
    """Thumbnails in rows; under each, its top labels as a link to the image page."""
    thumbs = thumbnails()
    for start in range(0, len(records), columns):
        for col, r in zip(st.columns(columns), records[start:start + columns], strict=False):
            with col:
                data = thumbs.get(r.uri, r.etag)
                if data:
                    st.image(data, width="stretch")
                else:
                    st.markdown(":gray[*(no preview)*]")
                summary = "FAILED" if r.status == Status.FAILED else r.label_summary(2, focus, sep=" · ")
                st.page_link(IMAGE_PAGE, label=summary or r.uri.rsplit("/", 1)[-1], query_params={"id": r.id})
