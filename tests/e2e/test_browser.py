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
from playwright.sync_api import TimeoutError as PlaywrightTimeout
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
    folders = [str(photos), str(photos.parent / "scenes"), str(photos.parent / "people")]  # 14 real photos
    subprocess.run([PIXDEX, "--catalog", catalog, "index", *folders, "--device", "cpu"], check=True,
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


def search_box(page):
    return page.get_by_role("searchbox").first


def tiles(page):
    return page.locator("a.pixdex-tile")


def results(page, count: int) -> None:
    """Wait for the results caption of `count` images, then for the grid to hold exactly that many."""
    page.get_by_text(f"Images 1–{count} of {count} · ").first.wait_for(timeout=60_000)
    expect(tiles(page)).to_have_count(count)


def idle(page) -> None:
    """Wait until the app has finished its run (keyboard shortcuts listen only then, as a person sees)."""
    page.locator("[data-test-script-state=notRunning]").wait_for(state="attached", timeout=60_000)


def press_until(page, key: str, heading: str) -> None:
    """Press `key` until the image `heading` shows: Streamlit binds a button's shortcut a moment
    after the page has drawn it, with nothing in the DOM to wait for (a person presses again)."""
    for _ in range(5):
        idle(page)
        page.keyboard.press(key)
        try:
            page.get_by_role("heading", name=heading).wait_for(timeout=4_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"{key} never showed {heading}")


def type_and_enter(page, text: str) -> None:
    box = search_box(page)
    box.fill("")
    box.click()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_type_a_word_press_enter_see_the_photo(app, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("desktop", {"width": 1400, "height": 1000}), ("phone", {"width": 390, "height": 844})):
        page = browser.new_page(viewport=viewport)
        page.goto(app)
        page.get_by_role("heading", name="pixdex").wait_for(timeout=60_000)
        results(page, 14)
        type_and_enter(page, "cat")
        results(page, 1)
        page.keyboard.press("Enter")  # Enter twice: still the cat (no "select all" trap)
        page.wait_for_timeout(1000)
        results(page, 1)
        assert tiles(page).first.locator("img").get_attribute("alt").startswith("cat.png: cat 9")
        assert "q=cat" in page.url  # the search is in the URL
        assert tiles(page).first.locator("img").evaluate("img => img.naturalWidth") == 256  # a thumbnail
        page.screenshot(path=SHOTS / f"search-cat-{name}.png", full_page=True)
        # a grid that fills the width: 8 a row on a desktop (beside the facets), 3 on a phone
        type_and_enter(page, "person")
        results(page, 8)
        page.wait_for_function("() => [...document.querySelectorAll('a.pixdex-tile img')].every(i => i.complete)")
        idle(page)  # every thumbnail loaded and the run done: the grid has its final layout
        tops = tiles(page).evaluate_all("els => els.map(e => Math.round(e.getBoundingClientRect().top))")
        assert tops.count(tops[0]) == (8 if name == "desktop" else 3), tops
        page.screenshot(path=SHOTS / f"search-person-{name}.png", full_page=True)
        page.close()


@pytest.mark.parametrize(("query", "found"), [
    ("cats", {"cat.png"}), ("butterfly", {"butterfly.jpg"}), ("cat OR butterfly", {"cat.png", "butterfly.jpg"}),
    ("people -group", {"bar55_2.jpg"}), ("black and white", {"portrait-bw.jpg", "cameraman.jpg"}),
    ("golden retriever", set()), ("dog -beach", set()),
])
def test_what_a_person_types_finds_what_it_says(app, browser, query, found):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app)
    page.get_by_role("heading", name="pixdex").wait_for(timeout=60_000)
    type_and_enter(page, query)
    if found:
        results(page, len(found))
        names = {alt.split(":")[0] for alt in tiles(page).locator("img").evaluate_all("els => els.map(e => e.alt)")}
        assert names == found
    else:
        page.get_by_text("No image matches").wait_for(timeout=60_000)  # a reason, never an empty page
    page.close()


def test_a_typo_gets_did_you_mean_and_one_click_fixes_it(app, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{app}/?q=buterfly")
    page.get_by_text("did you mean").wait_for(timeout=60_000)
    page.screenshot(path=SHOTS / "did-you-mean-phone.png", full_page=True)
    page.get_by_role("button", name="butterfly · 1").click()
    results(page, 1)
    assert "butterfly" in search_box(page).input_value()
    page.close()


def test_back_and_reload_keep_the_query_and_the_viewer_walks_the_results(app, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app)
    page.get_by_role("heading", name="pixdex").wait_for(timeout=60_000)
    type_and_enter(page, "person -portrait")
    results(page, 4)
    order = [alt.split(":")[0] for alt in tiles(page).locator("img").evaluate_all("els => els.map(e => e.alt)")]
    tiles(page).nth(1).click()  # the thumbnail itself opens the image
    page.get_by_role("heading", name=order[1]).wait_for(timeout=60_000)
    assert page.title().startswith(order[1])
    press_until(page, "ArrowRight", order[2])
    press_until(page, "ArrowLeft", order[1])
    press_until(page, "ArrowLeft", order[0])
    page.screenshot(path=SHOTS / "viewer.png", full_page=True)
    for _ in range(5):  # Esc: back to the results, the query intact
        idle(page)
        if "/image" not in page.url:
            break  # (never Esc again there: Esc in a search box clears it)
        page.keyboard.press("Escape")
        try:
            page.wait_for_url(lambda url: "/image" not in url, timeout=4_000)
        except PlaywrightTimeout:
            continue
    results(page, 4)
    expect(search_box(page)).to_have_value("person -portrait")  # the box is filled a moment after the grid
    page.reload()
    results(page, 4)
    expect(search_box(page)).to_have_value("person -portrait")  # the box is filled a moment after the grid

    tiles(page).first.click()
    page.get_by_role("heading", name=order[0]).wait_for(timeout=60_000)
    page.go_back()
    results(page, 4)  # Back too


def test_a_similar_image_opens_and_updates_the_url(app, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app}/?q=portrait")
    results(page, 4)
    tiles(page).first.click()
    page.get_by_text("Similar images").wait_for(timeout=60_000)
    first_url = page.url
    page.get_by_text("% alike · ").first.wait_for(timeout=60_000)  # each similar image with its score
    idle(page)
    tiles(page).first.click()
    page.wait_for_url(lambda url: url != first_url and "id=" in url, timeout=60_000)
    page.get_by_text("Similar images").wait_for(timeout=60_000)


def test_a_500_label_link_is_a_message_not_a_traceback(app, browser):
    page = browser.new_page()
    page.goto(f"{app}/?" + "&".join(f"all=label{i}" for i in range(500)))
    page.get_by_text("This search cannot be run").wait_for(timeout=60_000)
    assert page.get_by_test_id("stException").count() == 0
    page.goto(f"{app}/?q=" + "x" * 5000)
    page.get_by_text("at most 1000 characters").wait_for(timeout=60_000)


def test_the_timeline_groups_by_month_taken_and_jumps_to_a_month(app, browser):
    # five of the 14 photos carry a camera's date (tests/data/people), the rest none
    months = ["February 2006 · 2 photos", "December 2005 · 2 photos", "July 2005 · 1 photo", "No date taken · 9 photos"]
    for name, viewport in (("desktop", {"width": 1400, "height": 1000}), ("phone", {"width": 390, "height": 844})):
        page = browser.new_page(viewport=viewport)
        page.goto(app)
        page.get_by_role("heading", name="pixdex").wait_for(timeout=60_000)
        type_and_enter(page, "sort:taken")
        results(page, 14)
        page.get_by_role("heading", name=months[-1]).wait_for(timeout=60_000)
        shown = [h.strip() for h in page.get_by_role("heading").all_inner_texts() if " · " in h]
        assert shown == months  # newest month first, the undated last
        page.screenshot(path=SHOTS / f"timeline-{name}.png", full_page=True)
        page.close()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app}/?q=sort:taken")
    results(page, 14)
    idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Jump to").click()
    page.get_by_role("option", name="December 2005 · 2 photos").click()
    results(page, 2)
    expect(search_box(page)).to_have_value("sort:taken taken:2005-12")
    assert "taken%3A2005-12" in page.url or "taken:2005-12" in page.url  # the jump is in the URL
    names = {alt.split(":")[0] for alt in tiles(page).locator("img").evaluate_all("els => els.map(e => e.alt)")}
    assert names == {"jesper.jpg", "jesper_2.jpg"}
    page.close()


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
    page.goto(f"{app}/?q=missile")
    page.get_by_text("Images 1–2 of 2").wait_for(timeout=60_000)  # the bundled rocket and the upload
