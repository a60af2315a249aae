from pathlib import Path

import pytest

from ocr_runner.documents import load_document, parse_page_range, pdf_dpi
from ocr_runner.errors import InvalidInput, PayloadTooLarge
from tests.helpers import encode, make_pdf, render_page

pytestmark = pytest.mark.unit
EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"
OPTIONS = {"field": "file", "max_pages": 10, "max_pixels": 40_000_000, "base_size": 1024, "crop_mode": True}


@pytest.mark.parametrize(
    ("spec", "pages"),
    [(None, [1, 2, 3, 4, 5]), ("", [1, 2, 3, 4, 5]), ("2", [2]), ("1-3", [1, 2, 3]), ("4-", [4, 5]),
     ("5,1,3-4,3", [1, 3, 4, 5]), (" 2 - 3 ", [2, 3])],
)
def test_page_ranges(spec, pages):
    assert parse_page_range(spec, 5) == pages


@pytest.mark.parametrize("spec", ["0", "6", "3-2", "1-9", "a", "1,,2", "-3", "1-2-3"])
def test_bad_page_ranges_are_400(spec):
    with pytest.raises(InvalidInput) as info:
        parse_page_range(spec, 5)
    assert info.value.field == "pages"


def test_pdf_pages_render_in_order():
    pdf = make_pdf([["page one"], ["page two"], ["page three"]])
    document = load_document(pdf, pages="3,1", **OPTIONS)
    assert document.kind == "pdf" and document.page_count == 3
    assert [p.number for p in document.pages] == [1, 3]
    # 850x1100 px at 100 DPI is 8.5x11 in; rendered at 144 DPI in crop mode.
    assert (document.pages[0].width, document.pages[0].height) == (1224, 1584)
    # The rendered page states its resolution, which Tesseract's layout analysis needs.
    from ocr_runner.engines.tesseract import resolution
    from ocr_runner.images import load_image

    assert resolution(load_image(document.pages[0].image, max_pixels=10**8).info) == 144


def test_dpi_follows_the_mode():
    assert pdf_dpi(1024, True, 792) == 144
    assert pdf_dpi(1024, False, 792) == pytest.approx(1024 / 11)
    assert pdf_dpi(512, False, 4000) == 72


def test_too_many_pages_is_413_and_names_the_limit():
    pdf = make_pdf([["x"]] * 4)
    with pytest.raises(PayloadTooLarge, match="limit of 3"):
        load_document(pdf, pages=None, **{**OPTIONS, "max_pages": 3})
    assert len(load_document(pdf, pages="1-3", **{**OPTIONS, "max_pages": 3}).pages) == 3


def test_corrupt_and_truncated_pdfs_are_400():
    pdf = make_pdf([["x"]])
    for data in (b"%PDF-1.7\n garbage", pdf[: len(pdf) // 3]):
        with pytest.raises(InvalidInput):
            load_document(data, pages=None, **OPTIONS)


def test_encrypted_pdf_is_400_saying_so():
    import io

    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(make_pdf([["secret"]])))
    writer.encrypt("pw")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(InvalidInput, match="encrypted"):
        load_document(buffer.getvalue(), pages=None, **OPTIONS)


def test_an_image_is_one_page_and_rejects_other_ranges():
    image = encode(render_page(["x"]))
    assert len(load_document(image, pages="1", **OPTIONS).pages) == 1
    with pytest.raises(InvalidInput):
        load_document(image, pages="2", **OPTIONS)


@pytest.mark.skipif(not EVAL.exists(), reason="../shared/eval is not beside this checkout")
def test_real_pdf_from_the_eval_set():
    document = load_document((EVAL / "docling" / "2305.03393v1-pg9.pdf").read_bytes(), pages=None, **OPTIONS)
    assert document.page_count == 1 and document.pages[0].width == 1224


def test_pdf_text_layer_is_read_with_pixel_boxes_and_scans_have_none():
    from tests.helpers import make_text_pdf

    [page] = load_document(make_text_pdf(["Invoice 4711", "Total 42.50 EUR"]), pages=None, **OPTIONS).pages
    assert [r.text for r in page.text_layer] == ["Invoice 4711", "Total 42.50 EUR"]
    first = page.text_layer[0]
    # 72 pt from the left, baseline 72 pt below the top; rendered at 144 DPI (scale 2).
    assert 140 < first.x1 < 150 and first.x2 > first.x1 and 100 < first.y1 < first.y2 < 160
    assert load_document(make_pdf([["scanned text"]]), pages=None, **OPTIONS).pages[0].text_layer == ()


@pytest.mark.skipif(not (EVAL / "icdar2013").exists(), reason="../shared/eval is not beside this checkout")
def test_each_character_of_the_text_layer_lands_in_exactly_one_run():
    """A report page whose sentence changes font mid-line: PDFium gives the second font its own rectangle inside
    the first's, and reading each rectangle's area took those words twice. Runs are built from the text stream's
    characters, so the layer's characters are the page's, each once."""
    from collections import Counter

    import pypdfium2 as pdfium

    data = (EVAL / "icdar2013" / "us-022_p2.pdf").read_bytes()
    [page] = load_document(data, pages=None, **OPTIONS).pages
    pdf = pdfium.PdfDocument(data)
    stream = pdf[0].get_textpage().get_text_range()
    pdf.close()
    layer = "".join(r.text for r in page.text_layer)
    # PDFium's stream marks a soft hyphen U+FFFE; the runs carry the layout's mark for it.
    assert Counter(layer.replace(" ", "")) == Counter("".join(stream.replace("\ufffe", "\x02").split()))
    assert sum("In FY 2009 AUSAs received" in r.text for r in page.text_layer) == 1


def test_runs_the_stream_writes_without_a_space_are_glued_on_one_line() -> None:
    """PDFium starts a rectangle at each font change: a small-caps heading's full-size initial, and a
    footnote mark, are runs of their own that the stream writes with no space before the next."""
    from ocr_runner.documents import _glued

    runs = [((149.0, 297.0, 153.4, 303.8), "S"), ((154.8, 297.0, 183.4, 302.5), "YSTEM "),
            ((186.7, 297.1, 195.2, 303.7), "M"), ((196.2, 297.0, 218.5, 302.5), "ODEL"),
            ((60.0, 280.0, 100.0, 286.0), "below"),  # the next line: never glued to the one above
            ((300.0, 297.0, 340.0, 303.0), "far"),  # same line, a column away
            ((270.0, 297.0, 299.5, 303.0), "rtl")]  # right to left: the next run sits to the left
    assert [text for _, text in _glued(runs)] == ["SYSTEM ", "MODEL", "below", "farrtl"]
    assert _glued(runs)[0][0] == (149.0, 297.0, 183.4, 303.8)
