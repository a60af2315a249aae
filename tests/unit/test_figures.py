import io

import pytest
from PIL import Image

from ocr_runner.figures import annotate, crop_figures, link_figures
from ocr_runner.grounding import extract_boxes, strip_grounding

pytestmark = pytest.mark.unit

# The shape DeepSeek-OCR's grounded markdown takes (hand-written, for the post-processing only).
MARKDOWN = (
    "<|ref|>title<|/ref|><|det|>[[100, 50, 900, 100]]<|/det|>\n# Results\n\n"
    "<|ref|>image<|/ref|><|det|>[[100, 200, 500, 600]]<|/det|>\n\n"
    "<|ref|>text<|/ref|><|det|>[[100, 650, 900, 700]]<|/det|>\nSee the chart above.\n\n"
    "<|ref|>image<|/ref|><|det|>[[550, 200, 900, 600]]<|/det|>"
)


def test_figures_are_linked_in_order_and_other_tags_stripped():
    text = strip_grounding(link_figures(MARKDOWN, page=2))
    assert text == (
        "# Results\n\n![](images/page-2-figure-0.png)\n\nSee the chart above.\n\n![](images/page-2-figure-1.png)"
    )


def test_crops_match_the_boxes():
    page = Image.new("RGB", (1000, 1000), "white")
    page.paste((255, 0, 0), (100, 200, 500, 600))
    figures = crop_figures(page, extract_boxes(MARKDOWN, 1000, 1000), page=2)
    assert [name for name, _, _ in figures] == ["images/page-2-figure-0.png", "images/page-2-figure-1.png"]
    first = Image.open(io.BytesIO(figures[0][2]))
    assert abs(first.size[0] - 400) <= 1 and abs(first.size[1] - 400) <= 1  # 0..999 grid rounding
    assert first.getpixel((200, 200)) == (255, 0, 0)


def test_annotated_page_has_the_boxes_drawn():
    page = Image.new("RGB", (1000, 1000), "white")
    boxes = extract_boxes(MARKDOWN, 1000, 1000)
    drawn = Image.open(io.BytesIO(annotate(page, boxes)))
    assert drawn.size == page.size
    assert drawn.getpixel((100, 400)) != (255, 255, 255)  # on the first figure's left edge
    assert drawn.getpixel((300, 400)) == (255, 255, 255)  # inside it, untouched
