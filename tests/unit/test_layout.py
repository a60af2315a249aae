"""Reading order, paragraphs and table grids from line boxes (the CPU engine's layout step)."""

from __future__ import annotations

import pytest

from ocr_runner.engines.layout import Block, Line, is_rtl, joined, table_html, to_markdown, to_text, xy_cut

pytestmark = pytest.mark.unit


def column(x: float, texts: list[str], top: float = 100) -> list[Line]:
    return [Line(t, x, top + i * 30, x + 300, top + i * 30 + 20) for i, t in enumerate(texts)]


def words(line: Line) -> str:
    return line.text.split()[0]


def test_two_columns_read_down_each_column_even_with_aligned_lines() -> None:
    left = column(50, [f"a{i} of the running text" for i in range(1, 5)])
    right = column(400, [f"b{i} of the running text" for i in range(1, 5)])  # same baselines as the left column
    title = [Line("Title", 50, 20, 700, 60)]
    order = [words(ln) for ln in xy_cut(title + right + left, min_gap=10)]
    assert order == ["Title", "a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]


def test_right_to_left_pages_read_the_right_column_first() -> None:
    left = column(50, [f"س{i} نص عربي طويل بما يكفي" for i in range(1, 4)])
    right = column(400, [f"ع{i} نص عربي طويل بما يكفي" for i in range(1, 4)])
    assert is_rtl(left + right)
    assert [words(ln) for ln in xy_cut(left + right, min_gap=10, rtl=True)][:3] == ["ع1", "ع2", "ع3"]


def test_a_price_column_is_read_row_by_row_not_as_a_column() -> None:
    items = [Line(f"Item number {i} description", 50, 100 + 30 * i, 350, 120 + 30 * i) for i in range(4)]
    prices = [Line(f"{i}.50", 600, 100 + 30 * i, 650, 120 + 30 * i) for i in range(4)]
    order = [ln.text for ln in xy_cut(items + prices, min_gap=10)]
    assert order[:4] == ["Item number 0 description", "0.50", "Item number 1 description", "1.50"]


def test_markdown_has_headings_paragraphs_tables_and_drops_page_furniture() -> None:
    lines = [
        Line("Results", 50, 20, 300, 50),
        *column(50, ["The first paragraph", "goes on here."], top=80),
        *column(50, ["A second paragraph."], top=200),
        Line("Name", 50, 300, 150, 320), Line("Value", 400, 300, 500, 320),
        Line("alpha", 50, 330, 150, 350), Line("1.5", 400, 330, 450, 350),
        Line("Page 7", 300, 950, 380, 970),
    ]
    regions = [
        Block("title", 45, 15, 305, 55),
        Block("table", 45, 295, 505, 355),
        Block("footer", 295, 945, 385, 975),
    ]
    markdown = to_markdown(lines, regions, page_width=800, page_height=1000)
    assert markdown.split("\n\n") == [
        "## Results",
        "The first paragraph goes on here.",
        "A second paragraph.",
        "<table><thead><tr><td>Name</td><td>Value</td></tr></thead><tbody><tr><td>alpha</td><td>1.5</td></tr></tbody></table>",
    ]


def test_sparse_figure_text_becomes_an_image_placeholder() -> None:
    lines = [*column(50, ["Body text line"], top=50), Line("10", 100, 400, 120, 415), Line("20", 500, 700, 520, 715)]
    regions = [Block("figure", 40, 300, 760, 800)]
    assert to_markdown(lines, regions, 800, 1000).split("\n\n") == ["Body text line", "<!-- image -->"]


def test_table_header_spanning_columns_gets_a_colspan() -> None:
    lines = [
        Line("Group", 10, 0, 90, 20), Line("P value", 120, 0, 330, 20),
        Line("x", 10, 30, 40, 50), Line("0.1", 120, 30, 180, 50), Line("0.2", 260, 30, 330, 50),
        Line("y", 10, 60, 40, 80), Line("0.3", 120, 60, 180, 80), Line("0.4", 260, 60, 330, 80),
    ]
    html = table_html(lines)
    assert html.startswith('<table><thead><tr><td>Group</td><td colspan="2">P value</td></tr></thead>')
    assert "<tr><td>y</td><td>0.3</td><td>0.4</td></tr>" in html


def test_soft_hyphens_from_pdf_text_layers_join_words() -> None:
    assert joined(["consetetur sadipscing eir\x02", "mod tempor"]) == "consetetur sadipscing eirmod tempor"
    assert to_text([Line("eir\x02", 0, 0, 50, 20)], 800) == "eir-"


def test_overlapping_regions_are_ordered_by_their_lines_and_body_sized_titles_stay_paragraphs() -> None:
    first = column(50, ["This is a lot of text to test", "the code and see if it works"], top=100)
    second = column(50, ["The quick brown dog jumped over", "the lazy fox, again and again"], top=200)
    regions = [Block("title", 40, 190, 400, 260), Block("title", 40, 60, 420, 270)]  # the second overlaps both
    assert to_markdown(first + second, regions, 800, 1000).split("\n\n") == [
        "This is a lot of text to test the code and see if it works",
        "The quick brown dog jumped over the lazy fox, again and again",
    ]
