import pytest

from ocr_runner.grounding import Box, extract_boxes, grounding_text, strip_grounding, to_grid

pytestmark = pytest.mark.unit


def test_boxes_convert_from_the_999_grid_to_pixels():
    text = "<|ref|>Total<|/ref|><|det|>[[0, 0, 999, 999], [100, 200, 300, 400]]<|/det|>"
    assert extract_boxes(text, 2000, 1000) == [
        Box("Total", 0, 0, 2000, 1000),
        Box("Total", 200, 200, 601, 400),
    ]


def test_out_of_range_and_swapped_coordinates_are_clamped_and_ordered():
    assert extract_boxes("<|ref|>a<|/ref|><|det|>[[1200, 500, -5, 0]]<|/det|>", 999, 999) == [Box("a", 0, 0, 999, 500)]


def test_malformed_coordinates_are_ignored():
    assert extract_boxes("<|ref|>a<|/ref|><|det|>[[1, 2, 3]] garbage<|/det|>", 100, 100) == []
    assert extract_boxes("<|ref|>a<|/ref|><|det|>__import__('os')<|/det|>", 100, 100) == []


def test_grounded_markdown_is_stripped_to_clean_markdown():
    raw = (
        "<|ref|>title<|/ref|><|det|>[[10, 10, 500, 60]]<|/det|>\n# Report\n\n\n\n"
        "<|ref|>text<|/ref|><|det|>[[10, 80, 900, 200]]<|/det|>\nBody text.<|grounding|>"
    )
    assert strip_grounding(raw) == "# Report\n\nBody text."
    assert [b.label for b in extract_boxes(raw, 1000, 1000)] == ["title", "text"]


def test_grid_round_trip_is_within_a_grid_step():
    grid = to_grid(100, 50, 700, 350, 800, 400)
    [box] = extract_boxes(grounding_text("x", [grid]), 800, 400)
    assert abs(box.x1 - 100) <= 1 and abs(box.y2 - 350) <= 1


def test_markdown_from_any_engine_is_tidied_to_one_dialect():
    from ocr_runner.grounding import tidy_markdown

    raw = "```markdown\n# Title  \n\n\n\nEnergy \\(E = mc^2\\) and\n\\[\n\\frac{a}{b}\n\\]\n```"
    assert tidy_markdown(raw) == "# Title\n\nEnergy $E = mc^2$ and\n$$\\frac{a}{b}$$"
    assert tidy_markdown("plain text") == "plain text"
