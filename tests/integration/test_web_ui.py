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


def test_a_long_pdf_shows_progress_page_range_force_ocr_and_failed_pages(browser, rapid_server, tmp_path):
    import io

    from PIL import Image

    # Five readable pages and one too thin to read: the engine refuses that page alone.
    pages = [render_page([f"Progress sheet {n}"], size=(850, 1100), font_size=40) for n in range(1, 6)]
    pages.insert(3, Image.new("RGB", (3000, 30), "white"))
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=100.0)
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(buffer.getvalue())
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(rapid_server.url + "/ui")
    page.wait_for_function("document.getElementById('engine').textContent.includes('rapidocr')")
    page.evaluate("""() => { window.seen = [];
        new MutationObserver(() => window.seen.push(document.getElementById('status').textContent))
            .observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true}); }""")
    page.set_input_files("#file", str(pdf))
    page.select_option("#task", "ocr")
    page.fill("#pages-range", "2-6")
    page.check("#force")
    page.click("#run")
    page.wait_for_function("document.body.dataset.state === 'done' || document.body.dataset.state === 'error'",
                           timeout=120_000)
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    assert "5 page(s) · 1 failed" in page.inner_text("#status")
    assert any(" of 5 pages" in text for text in page.evaluate("window.seen")), page.evaluate("window.seen")
    assert "Page 4 could not be read" in page.inner_text("#notes")
    result = page.inner_text("#result")
    assert "Progress sheet 2" in result and "Progress sheet 1" not in result
    assert len(page.query_selector_all(".page img")) == 4


def test_a_tiff_is_previewed_as_the_servers_rendering(browser, rapid_server, tmp_path):
    import io

    image = render_page(["Tagged image file"])
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF")
    tiff = tmp_path / "scan.tiff"
    tiff.write_bytes(buffer.getvalue())
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    upload(page, rapid_server, tiff, "ocr")
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    assert page.evaluate("document.querySelector('.page img').src").startswith("data:image/png;base64,")
    assert page.evaluate("document.querySelector('.page img').naturalWidth") == image.width
    assert "Tagged image file" in page.inner_text("#result")


def test_the_page_says_which_path_read_a_pdf(browser, rapid_server, tmp_path):
    from tests.helpers import make_text_pdf

    pdf = tmp_path / "layer.pdf"
    pdf.write_bytes(make_text_pdf(["Text layer sheet 4411"]))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    upload(page, rapid_server, pdf, "ocr")
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    assert "text layer: 1" in page.inner_text("#status")
    page.check("#force")
    page.click("#run")
    page.wait_for_function("document.body.dataset.state === 'done' && !document.getElementById('run').disabled",
                           timeout=120_000)
    page.wait_for_function("!document.getElementById('status').textContent.includes('reading')", timeout=120_000)
    assert "ocr: 1" in page.inner_text("#status") and "text layer" not in page.inner_text("#status")
