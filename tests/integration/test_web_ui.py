"""The /ui page in headless Chromium (Debian's, driven by Playwright) against a real server."""

import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, encode, make_pdf, render_page

pytestmark = pytest.mark.integration
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def upload(page, server, path: Path, task: str, text: str | None = None) -> None:
    page.goto(server.url + "/ui")
    page.wait_for_function("document.getElementById('engine').textContent.includes('rapidocr')")
    page.set_input_files("#file", str(path))
    page.select_option("#task", task)
    if text is not None:
        page.fill("#text", text)
    page.click("#run")
    page.wait_for_function("document.body.dataset.state === 'done' || document.body.dataset.state === 'error'",
                           timeout=120_000)


def test_locate_draws_the_boxes_over_the_page(browser, rapid_server, tmp_path):
    image = tmp_path / "page.png"
    image.write_bytes(encode(render_page(["Browser test line", "Deliver to Berlin office"])))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    upload(page, rapid_server, image, "locate", "Berlin")
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    boxes = page.query_selector_all(".page .box")
    assert len(boxes) == 1 and boxes[0].inner_text() == "Berlin"
    # The box sits on the second text line: its top is between 20% and 40% of the page image's height.
    top = page.evaluate("parseFloat(document.querySelector('.box').style.top)")
    assert 20 < top < 40
    assert "Berlin:" in page.inner_text("#result")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-locate.png"), full_page=True)


def test_markdown_of_a_pdf_shows_text_and_rendered_pages(browser, rapid_server, tmp_path):
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(make_pdf([["Web page one"], ["Web page two"]]))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    upload(page, rapid_server, pdf, "markdown")
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    assert "Web page two" in page.inner_text("#result")
    assert len(page.query_selector_all(".page img")) == 2
    assert "2 page(s)" in page.inner_text("#status")
    page.screenshot(path=str(ARTIFACTS / "ui-markdown.png"), full_page=True)


def test_errors_are_shown_not_swallowed(browser, rapid_server, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    page = browser.new_page()
    upload(page, rapid_server, junk, "ocr")
    assert page.evaluate("document.body.dataset.state") == "error"
    assert "400" in page.inner_text("#status") and "not a supported image" in page.inner_text("#status")
