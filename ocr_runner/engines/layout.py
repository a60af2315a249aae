"""Page layout from text-line boxes (and optional layout regions): reading order, paragraphs, tables.

Pure geometry, no models: the CPU engine feeds it the lines RapidOCR found and the regions
the layout model found. Reading order comes from the lines (``reading_order.xy_cut``: columns
first, then bands); the regions only say what a run of lines is (title, caption, table...), and
a region called a table must read as one. Tables become HTML grids from their lines' rows and
column bands. Each block is preceded by its grounding tag (label and box on the 0..999 grid),
the markup DeepSeek-OCR writes, so boxes, figure crops and annotation need no engine of their own.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from statistics import median

from ..grounding import grounding_text, to_grid
from .reading_order import MIN_COLUMN_CHARS, is_text_column, looks_like_table, rows, split_at_gutters, xy_cut

__all__ = ["Block", "Bounds", "Line", "is_rtl", "is_text_column", "joined", "rows", "table_html", "to_markdown",
           "to_text", "xy_cut"]

Bounds = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels

# Region kinds, as the CDLA layout model names them.
HEADINGS = {"title"}
FURNITURE = {"header", "footer"}
FIGURES = {"figure"}
TABLES = {"table"}


@dataclass(frozen=True)
class Line:
    text: str
    x1: float
    y1: float
    x2: float
    y2: float
    score: float = 1.0

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def cy(self) -> float:
        return (self.y1 + self.y2) / 2


@dataclass
class Block:
    """A region of the page (a layout-model box, or a run of lines outside any) and its lines."""

    kind: str
    x1: float
    y1: float
    x2: float
    y2: float
    lines: list[Line] = field(default_factory=list)
    loose: bool = False  # a line outside every layout region
    region_area: float = 0.0  # the layout model's box, before the block shrinks to its lines

    @classmethod
    def around(cls, kind: str, lines: list[Line], loose: bool = False) -> Block:
        return cls(kind, min(ln.x1 for ln in lines), min(ln.y1 for ln in lines), max(ln.x2 for ln in lines),
                   max(ln.y2 for ln in lines), list(lines), loose)


Box = Line | Block
COLUMN_GAP = 0.006  # of the page width: the narrowest gutter between columns (OCR line boxes are padded)


def paragraphs(lines: list[Line], min_gap: float, rtl: bool = False) -> list[str]:
    """Lines put in reading order and joined into paragraphs."""
    return [joined([ln.text for ln in group]) for group in paragraph_groups(xy_cut(lines, min_gap, rtl=rtl), rtl)]


def paragraph_groups(ordered: list[Line], rtl: bool = False) -> list[list[Line]]:
    """Lines already in reading order, grouped into paragraphs.

    A paragraph ends at a vertical gap over ~0.8 line heights, at a jump back up (a new column),
    or after a line that stops well short of the column's far edge (the last line of a paragraph,
    a list entry), or after a row of boxes far apart (a receipt's item and its price); boxes side by
    side on one row stay together.
    """
    if not ordered:
        return []
    heights = median(ln.height for ln in ordered)
    left, right = min(ln.x1 for ln in ordered), max(ln.x2 for ln in ordered)
    width = max(right - left, 1.0)
    out: list[list[Line]] = [[ordered[0]]]
    spread = False  # the current row holds boxes more than two line heights apart
    for prev, line in zip(ordered, ordered[1:]):
        same_row = min(prev.y2, line.y2) - max(prev.y1, line.y1) > 0.5 * min(prev.height, line.height)
        if same_row:
            spread = spread or abs(line.x1 - prev.x2 if not rtl else prev.x1 - line.x2) > 2 * heights
            out[-1].append(line)
            continue
        new_column = line.y1 < prev.y1 - heights
        short = (prev.x1 - left if rtl else right - prev.x2) > 0.25 * width
        if line.y1 - prev.y2 > 0.8 * heights or new_column or short or spread:
            out.append([])
        spread = False
        out[-1].append(line)
    return [g for g in out if any(ln.text.strip() for ln in g)]


SOFT_HYPHEN = "\x02"  # PDFium's mark for a word hyphenated at the end of a line
_LINE_END_HYPHEN = re.compile(r"(?<=[^\W\d_])-$")


def joined(pieces: list[str]) -> str:
    """Pieces of one paragraph joined by spaces; a word split across lines (PDFium's soft hyphen, or a
    hyphen after a letter with a lower-case letter next) is joined back."""
    out = ""
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        if out.endswith(SOFT_HYPHEN):
            out = out[:-1] + piece
        elif _LINE_END_HYPHEN.search(out) and piece[0].islower():
            out = out[:-1] + piece
        else:
            out = f"{out} {piece}" if out else piece
    return out.replace(SOFT_HYPHEN, "-")


_RTL = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def is_rtl(lines: list[Line]) -> bool:
    """More Hebrew/Arabic-script letters than Latin ones: the page reads right to left."""
    text = "".join(ln.text for ln in lines)
    return len(_RTL.findall(text)) > len(_LATIN.findall(text))


def _bands(lines: list[Line]) -> list[list[float]]:
    """Column bands: the union of x-extents of the given lines, left to right."""
    bands: list[list[float]] = []
    for line in sorted(lines, key=lambda ln: ln.x1):
        if bands and line.x1 <= bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], line.x2)
        else:
            bands.append([line.x1, line.x2])
    return bands


def table_html(lines: list[Line]) -> str:
    """An HTML grid: rows from vertical overlap; columns from the x-bands of the fullest rows (so a header
    spanning several columns does not merge them); a cell over several bands gets a colspan. The first
    row is the header."""
    grid_rows = rows(lines)
    if not grid_rows:
        return ""
    widest = sorted(len(r) for r in grid_rows)[(3 * len(grid_rows)) // 4]  # the 75th-percentile cell count
    bands = _bands([ln for r in grid_rows if len(r) >= widest for ln in r]) or _bands(lines)

    def span(line: Line) -> tuple[int, int]:
        hit = [i for i, (a, b) in enumerate(bands)
               if min(b, line.x2) - max(a, line.x1) > 0.3 * min(b - a, line.x2 - line.x1)]
        if hit:
            return hit[0], hit[-1]
        centre = (line.x1 + line.x2) / 2
        nearest = min(range(len(bands)), key=lambda i: min(abs(centre - bands[i][0]), abs(centre - bands[i][1])))
        return nearest, nearest

    def row_html(row: list[Line]) -> str:
        cells: dict[int, list] = {}  # first band -> [last band, text]
        for line in row:
            first, last = span(line)
            if first in cells:
                cells[first][0] = max(cells[first][0], last)
                cells[first][1] += " " + line.text.strip()
            else:
                cells[first] = [last, line.text.strip()]
        out, column = [], 0
        while column < len(bands):
            if column in cells:
                last, text = cells[column]
                last = max(last, column)
                colspan = f' colspan="{last - column + 1}"' if last > column else ""
                out.append(f"<td{colspan}>{html.escape(text)}</td>")
                column = last + 1
            else:
                out.append("<td></td>")
                column += 1
        return "<tr>" + "".join(out) + "</tr>"

    head = f"<thead>{row_html(grid_rows[0])}</thead>" if len(grid_rows) > 1 else ""
    body = "".join(row_html(r) for r in (grid_rows[1:] if head else grid_rows))
    return f"<table>{head}<tbody>{body}</tbody></table>"


def assign(lines: list[Line], regions: list[Block]) -> list[Block]:
    """Each line joins the region holding most of its area; lines in none become single-line text blocks."""
    blocks = [Block(r.kind, r.x1, r.y1, r.x2, r.y2) for r in regions]
    loose: list[Block] = []
    for line in lines:
        area = max((line.x2 - line.x1) * line.height, 1.0)
        best, best_share = None, 0.5
        for block in blocks:
            w = min(line.x2, block.x2) - max(line.x1, block.x1)
            h = min(line.y2, block.y2) - max(line.y1, block.y1)
            share = (w * h / area) if w > 0 and h > 0 else 0.0
            if share > best_share:
                best, best_share = block, share
        if best is None:
            loose.append(Block.around("text", [line], loose=True))
        else:
            best.lines.append(line)
    for block in blocks:  # order by what a region holds: layout boxes overlap and overshoot
        block.region_area = (block.x2 - block.x1) * (block.y2 - block.y1)
        if block.lines:
            block.x1, block.y1 = min(ln.x1 for ln in block.lines), min(ln.y1 for ln in block.lines)
            block.x2, block.y2 = max(ln.x2 for ln in block.lines), max(ln.y2 for ln in block.lines)
    return [b for b in blocks if b.lines or b.kind in FIGURES] + loose


FIGURE_TEXT_COVERAGE = 0.12


def text_coverage(block: Block) -> float:
    """Share of the block's area covered by its text lines."""
    area = max(block.region_area or (block.x2 - block.x1) * (block.y2 - block.y1), 1.0)
    return sum((ln.x2 - ln.x1) * ln.height for ln in block.lines) / area


def _is_picture(block: Block, page_area: float) -> bool:
    """A figure with sparse text or short labels (axes, callouts). Dense text or sentences in a "figure",
    or one that fills the page (a cropped table, a receipt photo, a form), are read as text."""
    coverage = text_coverage(block)
    area = block.region_area or (block.x2 - block.x1) * (block.y2 - block.y1)
    if area >= 0.6 * page_area:
        return False
    short = median([len(ln.text) for ln in block.lines] or [0]) < MIN_COLUMN_CHARS  # labels, not sentences
    return coverage < FIGURE_TEXT_COVERAGE or (coverage < 0.35 and short)


KEPT_WHOLE = TABLES | FIGURES  # blocks ordered as one box; every other region's lines are ordered one by one


def _tag(kind: str, blocks: list[Block], width: float, height: float) -> str:
    x1, y1 = min(b.x1 for b in blocks), min(b.y1 for b in blocks)
    x2, y2 = max(b.x2 for b in blocks), max(b.y2 for b in blocks)
    return grounding_text(kind, [to_grid(x1, y1, x2, y2, int(width), int(height))])


def to_markdown(lines: list[Line], regions: list[Block], page_width: float, page_height: float,
                grounding: bool = True) -> str:
    """The page as markdown: headings, paragraphs, HTML tables, figures, no page furniture.

    With ``grounding`` each block is preceded by ``<|ref|>label<|/ref|><|det|>[[box]]<|/det|>`` (labels
    title, text, table, image, caption...; a figure is its tag alone, as DeepSeek-OCR writes one).
    """
    min_gap = max(page_width * COLUMN_GAP, 4.0)
    rtl = is_rtl(lines)
    lines = split_columns(lines)
    body_height = median(ln.height for ln in lines) if lines else 0.0
    blocks = assign(lines, regions)
    for block in blocks:
        if block.kind in TABLES and not looks_like_table(block.lines):
            block.kind = "text"  # running text (columns of it) the layout model took for a table
    owner: dict[int, Block] = {}
    units: list[Box] = []
    for block in blocks:
        if block.kind in KEPT_WHOLE:
            units.append(block)
        else:
            for line in block.lines:
                owner[id(line)] = block
                units.append(line)
    # Runs of consecutive units from one block (loose lines: one run while they follow each other).
    runs: list[tuple[Block | None, list[Box]]] = []
    for unit in xy_cut(units, min_gap, rtl=rtl):
        block = unit if isinstance(unit, Block) else owner[id(unit)]
        key = None if block.loose else block
        if runs and runs[-1][0] is key and not isinstance(unit, Block):
            runs[-1][1].append(unit)
        else:
            runs.append((key, [unit]))
    parts: list[str] = []
    for block, members in runs:
        kind = block.kind if block is not None else "text"
        if block is not None and block.kind in KEPT_WHOLE:
            member = members[0]
            assert isinstance(member, Block)
            if member.kind in FIGURES and _is_picture(member, page_width * page_height):
                parts.append(_tag("image", [member], page_width, page_height) if grounding else "<!-- image -->")
                continue
            if member.kind in TABLES and len(member.lines) > 1:
                parts.append(_grounded("table", [member], table_html(member.lines), grounding, page_width, page_height))
                continue
            members, kind = list(member.lines), "text"
        run_lines = [m for m in members if isinstance(m, Line)]
        if not run_lines:
            continue
        boxes = [Block.around(kind, run_lines)]
        if kind in FURNITURE and (boxes[0].y2 < 0.15 * page_height or boxes[0].y1 > 0.85 * page_height):
            continue  # running heads and page numbers, where they sit
        if block is None and _is_page_number(run_lines, page_height):
            continue
        if kind in HEADINGS and _is_heading(run_lines, body_height):
            text = joined([ln.text for ln in run_lines])
            if text:
                parts.append(_grounded("title", boxes, f"## {_clean_heading(text)}", grounding, page_width,
                                       page_height))
            continue
        label = "text" if kind in HEADINGS else kind
        for group in paragraph_groups(run_lines, rtl):
            parts.append(_grounded(label, [Block.around(label, group)], joined([ln.text for ln in group]), grounding,
                                   page_width, page_height))
    return "\n\n".join(p for p in parts if p.strip())


def _grounded(label: str, boxes: list[Block], body: str, grounding: bool, width: float, height: float) -> str:
    return f"{_tag(label, boxes, width, height)}\n{body}" if grounding else body


_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[\divxlc]{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$", re.I)


def _is_page_number(lines: list[Line], page_height: float) -> bool:
    """A lone page number at the top or bottom of the page ("7", "- 7 -", "Page 7 of 9", "xii")."""
    return (len(lines) == 1 and bool(_PAGE_NUMBER.match(lines[0].text.strip()))
            and (lines[0].y2 < 0.1 * page_height or lines[0].y1 > 0.9 * page_height))


def _is_heading(lines: list[Line], body_height: float) -> bool:
    """A title region holding one short line, or a few lines in a larger type than the body's; a paragraph
    the model calls a title stays a paragraph."""
    chars = sum(len(ln.text) for ln in lines)
    if len(lines) == 1 and chars <= 80:
        return True
    return len(lines) <= 3 and chars <= 150 and median(ln.height for ln in lines) >= 1.15 * body_height


def _clean_heading(text: str) -> str:
    return re.sub(r"^#+\s*", "", text).strip()


def split_columns(lines: list[Line]) -> list[Line]:
    """Lines that cross a column gutter, cut in two there (see ``reading_order.split_at_gutters``)."""
    return split_at_gutters(lines, lambda ln, text, x1, x2: Line(text, x1, ln.y1, x2, ln.y2, ln.score))


def to_text(lines: list[Line], page_width: float) -> str:
    """Plain text in reading order, one visual line per line, a blank line between columns and blocks."""
    min_gap = max(page_width * COLUMN_GAP, 4.0)
    lines = split_columns(lines)
    ordered = xy_cut(lines, min_gap, rtl=is_rtl(lines))
    out: list[str] = []
    for prev, line in zip([None, *ordered], ordered):
        if prev is not None and (line.y1 - prev.y2 > 0.8 * line.height or line.y1 < prev.y1 - line.height):
            out.append("")
        out.append(line.text.strip().replace(SOFT_HYPHEN, "-"))
    return "\n".join(out).strip()
