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


def test_an_equation_given_glyph_by_glyph_does_not_hide_its_column() -> None:
    """A PDF text layer gives a display equation's glyphs as runs of one or two characters: a column holding
    one is still a column of running text, read down before the next."""
    left = column(50, [f"a{i} of the running text" for i in range(1, 4)])
    glyphs = [Line(g, 60 + 12 * k, 195, 70 + 12 * k, 215) for k, g in enumerate("Y=X*X+Z(3)" * 2)]  # inside it
    left += column(50, [f"a{i} of the running text" for i in range(4, 7)], top=230)
    right = column(400, [f"b{i} of the running text" for i in range(1, 7)])
    order = [ln.text for ln in xy_cut(left + glyphs + right, min_gap=10)]
    assert [t.split()[0] for t in order if " " in t] == [f"a{i}" for i in range(1, 7)] + [f"b{i}" for i in range(1, 7)]


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
    markdown = to_markdown(lines, regions, page_width=800, page_height=1000, grounding=False)
    assert markdown.split("\n\n") == [
        "## Results",
        "The first paragraph goes on here.",
        "A second paragraph.",
        "<table><thead><tr><td>Name</td><td>Value</td></tr></thead><tbody><tr><td>alpha</td><td>1.5</td></tr></tbody></table>",
    ]


def test_sparse_figure_text_becomes_an_image_placeholder() -> None:
    lines = [*column(50, ["Body text line"], top=50), Line("10", 100, 400, 120, 415), Line("20", 500, 700, 520, 715)]
    regions = [Block("figure", 40, 300, 760, 800)]
    assert to_markdown(lines, regions, 800, 1000, grounding=False).split("\n\n") == ["Body text line", "<!-- image -->"]


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
    assert to_markdown(first + second, regions, 800, 1000, grounding=False).split("\n\n") == [
        "This is a lot of text to test the code and see if it works",
        "The quick brown dog jumped over the lazy fox, again and again",
    ]


PROSE = "the quick brown fox jumps over a dog"


def test_a_table_region_holding_columns_of_running_text_is_read_as_columns() -> None:
    """The layout model's "table" over a three-column newspaper body: read down each column."""
    columns = [column(50 + 260 * c, [f"c{c}l{i} {PROSE}" for i in range(6)]) for c in range(3)]
    columns = [[Line(ln.text, ln.x1, ln.y1, ln.x1 + 240, ln.y2) for ln in col] for col in columns]
    lines = [ln for col in columns for ln in col]
    markdown = to_markdown(lines, [Block("table", 40, 90, 830, 300)], 900, 1000, grounding=False)
    assert "<table>" not in markdown
    order = [word for word in markdown.split() if word.startswith("c") and "l" in word]
    assert order == [f"c{c}l{i}" for c in range(3) for i in range(6)]


def test_the_table_check_keeps_rows_of_numbers_and_rejects_prose() -> None:
    from ocr_runner.engines.reading_order import looks_like_table

    numbers = [Line(t, x, 100 + 30 * r, x + 60, 120 + 30 * r) for r in range(5)
               for x, t in ((50, f"Row {r}"), (300, f"{r}.5"), (500, f"{r * 7}%"))]
    assert looks_like_table(numbers)
    prose = [Line(f"{PROSE} {i}", 50, 100 + 30 * i, 700, 120 + 30 * i) for i in range(8)]
    assert not looks_like_table(prose)
    assert not looks_like_table(numbers[:1])  # one line is no table


def test_a_right_column_caption_and_table_stay_in_the_right_column() -> None:
    left = column(50, [f"L{i} {PROSE}" for i in range(12)])
    right_top = column(420, [f"R{i} {PROSE}" for i in range(4)])
    caption = [Line("Table 1: Results of the experiment", 420, 240, 720, 260)]
    cells = [Line(t, x, 280 + 30 * r, x + 50, 300 + 30 * r) for r in range(3) for x, t in ((420, "a"), (620, f"{r}.1"))]
    right_bottom = column(420, [f"S{i} {PROSE}" for i in range(3)], top=400)
    regions = [Block("table_caption", 415, 235, 725, 265), Block("table", 415, 275, 725, 365)]
    markdown = to_markdown(left + right_top + caption + cells + right_bottom, regions, 800, 1000, grounding=False)
    assert markdown.index("L11") < markdown.index("R0") < markdown.index("Table 1") < markdown.index("<table>")
    assert markdown.index("</table>") < markdown.index("S0")


def test_receipt_lines_stay_apart_and_line_end_hyphens_join() -> None:
    receipt = [Line("COFFEE", 50, 100, 150, 120), Line("3.50", 400, 100, 450, 120),
               Line("TEA", 50, 130, 110, 150), Line("2.00", 400, 130, 450, 150),
               Line("TOTAL", 50, 160, 140, 180), Line("5.50", 400, 160, 450, 180)]
    assert to_markdown(receipt, [], 500, 400, grounding=False).split("\n\n") == [
        "COFFEE 3.50", "TEA 2.00", "TOTAL 5.50"]
    assert joined(["he was igno-", "rant of it"]) == "he was ignorant of it"
    assert joined(["the well-", "Known case"]) == "the well- Known case"


def test_markdown_blocks_carry_grounding_boxes_and_page_numbers_go() -> None:
    from ocr_runner.grounding import extract_boxes, strip_grounding

    lines = [Line("Results", 50, 20, 300, 50), *column(50, ["The first paragraph", "goes on here."], top=80),
             Line("12", 390, 960, 410, 980)]
    regions = [Block("title", 45, 15, 305, 55), Block("figure", 400, 300, 700, 700)]
    markdown = to_markdown(lines, regions, page_width=800, page_height=1000)
    boxes = extract_boxes(markdown, 800, 1000)
    assert [b.label for b in boxes] == ["title", "text", "image"]
    assert (boxes[0].x1, boxes[0].y1, boxes[0].x2, boxes[0].y2) == (50, 20, 300, 50)
    assert strip_grounding(markdown).split("\n\n") == ["## Results", "The first paragraph goes on here."]


def test_a_caption_set_across_the_gutter_does_not_interleave_the_columns() -> None:
    """No horizontal gap splits the block (the columns' lines interleave) and a caption runs across the
    gutter: the columns are still read one after the other, the caption between them."""
    left = column(50, [f"a{i} of the running text" for i in range(1, 9)])
    right = column(400, [f"b{i} of the running text" for i in range(1, 9)], top=110)  # baselines offset
    caption = [Line("CAPTION across the gutter", 250, 160, 500, 175)]
    order = [words(ln) for ln in xy_cut(right + caption + left, min_gap=10)]
    assert order == [f"a{i}" for i in range(1, 9)] + ["CAPTION"] + [f"b{i}" for i in range(1, 9)]
