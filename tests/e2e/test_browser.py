"""The app in a real browser: `pixdex ui` on a catalogue of the test photos, driven through
Debian's chromium (headless, by Playwright with `executable_path`). Screenshots go to
var/e2e-screenshots/ for a person to look at. `make test` installs chromium when it is missing and
sets PIXDEX_E2E_REQUIRED, so there this test never skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "e2e-screenshots"
PIXDEX = str(Path(sys.executable).parent / "pixdex")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

if not CHROMIUM and not os.environ.get("PIXDEX_E2E_REQUIRED"):
    pytest.skip("no chromium on this machine (make test installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory, photos):
    tmp = tmp_path_factory.mktemp("e2e")
    catalog = f"sqlite:///{tmp / 'catalog.db'}"
    subprocess.run([PIXDEX, "--catalog", catalog, "index", str(photos), "--device", "cpu"], check=True,
                   capture_output=True, timeout=300)
    port = free_port()
    env = {**os.environ, "PIXDEX_THUMBNAILS": str(tmp / "thumbs"), "PIXDEX_UPLOADS": str(tmp / "uploads"),
           "PIXDEX_DEVICE": "cpu"}
    proc = subprocess.Popen([PIXDEX, "--catalog", catalog, "ui", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_port(port, proc, "pixdex ui")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "PIXDEX_E2E_REQUIRED is set but chromium is not installed"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_search_cat_open_the_image_and_see_its_labels(app, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app)
    page.get_by_role("heading", name="pixdex").wait_for(timeout=60_000)
    page.get_by_text("Images 1–4 of 4").wait_for()

    box = page.get_by_test_id("stMultiSelect").first
    box.click()
    page.keyboard.type("cat")
    page.get_by_role("option", name="cat", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_text("Images 1–1 of 1").wait_for()
    grid = page.get_by_test_id("stImage")
    grid.first.wait_for()
    # the caption can render a frame before the last page's images are cleared: wait for the grid
    expect(grid).to_have_count(1)  # the cat, and only the cat
    assert page.locator("img").first.evaluate("img => img.naturalWidth") == 256  # a thumbnail, not the photo
    assert "all=cat" in page.url  # the search is in the URL
    page.screenshot(path=SHOTS / "search-cat.png", full_page=True)

    page.get_by_role("link", name="cat 9").click()
    page.get_by_role("heading", name="cat.png").wait_for()
    page.get_by_text("Egyptian cat").first.wait_for()
    body = page.inner_text("body")
    assert "Concepts" in body and "domestic animal" in body and "PNG" in body
    assert "/image?id=" in page.url
    page.screenshot(path=SHOTS / "image-cat.png", full_page=True)

    shared = browser.new_page()  # a shared link reopens the same search
    shared.goto(f"{app}/?all=coffee")
    shared.get_by_text("Images 1–1 of 1").wait_for(timeout=60_000)
    shared.get_by_role("link", name="espresso").wait_for()


def test_upload_a_photo_keep_it_and_find_it(app, browser, photos, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app}/upload")
    page.get_by_role("heading", name="Upload").wait_for(timeout=60_000)
    page.get_by_text("Keep these images in the catalogue").click()
    upload = tmp_path / "holiday rocket.jpg"
    upload.write_bytes((photos / "rocket.jpg").read_bytes())
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("Kept:").wait_for(timeout=60_000)
    page.get_by_text("missile").first.wait_for()  # the labels' rows can land a render after "Kept:"
    body = page.inner_text("body")
    assert "holiday rocket.jpg" in body and "missile" in body
    page.screenshot(path=SHOTS / "upload-rocket.png", full_page=True)

    page.get_by_role("link", name="Open in the catalogue").click()
    page.get_by_text("missile").first.wait_for()
    page.goto(f"{app}/?all=missile")
    page.get_by_text("Images 1–2 of 2").wait_for(timeout=60_000)  # the bundled rocket and the upload
