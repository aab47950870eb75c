"""Running the app's pages under streamlit.testing.v1.AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")


def run_app(page: str | None = None, **params: str | list[str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def image_links(at: AppTest) -> list[str]:
    """The labels of the links to image pages: one per grid thumbnail or queued image."""
    return [link.label for link in at.get("page_link") if link.proto.page == "image"]
