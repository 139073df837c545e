"""The web page in a real browser: headless Chromium (the Debian package) driven by Playwright, no download.

Upload a query, see ranked thumbnails, click one to re-query, open the larger view; the screenshot is saved in
$MCJA_ARTIFACTS (default ./test-artifacts)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers.serve import run_server

CHROMIUM = os.environ.get("MCJA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture()
def browser_page():
    """A Chromium page, or a skip naming what is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                   "(pip install playwright; the browser comes from the system, not a download)")
    if not CHROMIUM:
        pytest.skip("Chromium not found (Debian: apt-get install chromium; or set MCJA_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        yield page
        browser.close()


def wait_for_thumbnails(page) -> None:
    """Every result thumbnail loaded (they load lazily: scroll them into view first)."""
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("Array.from(document.querySelectorAll('#grid img')).every(i => i.complete)")
    assert page.evaluate("Array.from(document.querySelectorAll('#grid img')).every(i => i.naturalWidth > 0)"), \
        "a thumbnail did not load"
    page.evaluate("window.scrollTo(0, 0)")


def test_page_upload_rank_requery(browser_page, live_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server + "/")
    expect(page.locator("#status")).to_contain_text("16 gallery images")
    query = tmp_path / "archive" / "infrared" / "0002" / "0002_c3_1.png"
    page.set_input_files("#file", str(query))
    cards = page.locator("#grid .card")
    expect(cards).to_have_count(16)
    first = cards.nth(0)
    expect(first.locator(".rank")).to_have_text("#1")
    expect(first).to_have_class("card right")  # the query itself, person 2: a green border
    assert page.locator("#grid .card.wrong").count() > 0  # the other people: red borders
    assert page.locator("#grid .card.right").count() == 4  # person 2's four images
    wait_for_thumbnails(page)
    shots = Path(os.environ.get("MCJA_ARTIFACTS", "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "serve-page.png"), full_page=True)

    # click a lower-ranked result to use it as the query: it comes back first, with its own person's borders
    third = cards.nth(2)
    gid = third.get_attribute("data-id")
    third.locator("button.use").click()
    expect(page.locator("#query-info")).to_contain_text(f"gallery image #{gid}")
    expect(cards.nth(0)).to_have_attribute("data-id", gid)
    expect(cards).to_have_count(16)

    # filters: only visible gallery images
    page.select_option("#modality", "visible")
    page.fill("#topk", "5")
    page.click("#search")
    expect(cards).to_have_count(5)
    shown = page.locator("#grid .labels").all_inner_texts()
    assert len(shown) == 5 and all(t.endswith("visible") for t in shown), shown

    # the larger view
    cards.nth(0).locator("img").click()
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#viewer-caption")).to_contain_text("rank 1")
    page.screenshot(path=str(shots / "serve-page-viewer.png"))
    page.click("#viewer-close")
    expect(page.locator("#viewer")).to_be_hidden()

    # browse the gallery and pick a person there as the query (any modality: the query itself comes first)
    page.select_option("#modality", "")
    page.click("#browse")
    expect(cards).to_have_count(16)
    expect(page.locator("#summary")).to_contain_text("Gallery: 16 images")
    picked = cards.nth(5).get_attribute("data-id")
    cards.nth(5).locator("button.use").click()
    expect(page.locator("#query-info")).to_contain_text(f"gallery image #{picked}")
    expect(cards.nth(0)).to_have_attribute("data-id", picked)
    assert not errors, errors


def test_page_with_token_asks_for_it_then_works(browser_page, service, tmp_path: Path) -> None:
    """Behind a token the page asks for it; then searches (header) and thumbnails (cookie) go through."""
    from playwright.sync_api import expect

    token = "page-token-0123456789"
    server = run_server(service, token)
    url = next(server)
    try:
        page = browser_page
        page.goto(url + "/")
        expect(page.locator("#token-form")).to_be_visible()
        page.fill("#token", token)
        page.click("#token-form button")
        expect(page.locator("#status")).to_contain_text("16 gallery images")
        page.set_input_files("#file", str(tmp_path / "archive" / "visible" / "0001" / "0001_c1_0.png"))
        expect(page.locator("#grid .card")).to_have_count(16)
        wait_for_thumbnails(page)
    finally:
        next(server, None)
