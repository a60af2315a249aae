"""Page layout from text-line boxes (and optional layout regions): reading order, paragraphs, tables.

Pure geometry, no models: the CPU engine feeds it the lines RapidOCR found and the regions
the layout model found. Reading order is a recursive XY-cut (columns first where a gutter
runs down a block, then bands top to bottom); tables become HTML grids from their lines'
rows and column bands.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from statistics import median

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


def _gaps(intervals: list[tuple[float, float]], min_gap: float) -> list[tuple[float, float]]:
    """Empty stretches at least ``min_gap`` wide between the union of ``intervals``."""
    gaps: list[tuple[float, float]] = []
    ordered = sorted(intervals)
    end = ordered[0][1]
    for start, stop in ordered[1:]:
        if start - end >= min_gap:
            gaps.append((end, start))
        end = max(end, stop)
    return gaps


def xy_cut(items: list, min_gap: float, depth: int = 0, rtl: bool = False) -> list:
    """``items`` (anything with x1, y1, x2, y2) in reading order (columns right to left when ``rtl``).

    A vertical gutter splits a block into columns when both sides run down at least a third
    of the block's height (so a table's cell gaps or a short side note do not); otherwise
    horizontal gaps split it into bands read top to bottom.
    """
    if len(items) <= 1:
        return list(items)
    reading = [item for row in rows(items) for item in (row[::-1] if rtl else row)]
    if depth > 60:
        return reading
    top, bottom = min(i.y1 for i in items), max(i.y2 for i in items)
    height = max(bottom - top, 1.0)
    for start, stop in sorted(_gaps([(i.x1, i.x2) for i in items], min_gap), key=lambda g: g[0] - g[1]):
        cut = (start + stop) / 2
        left = [i for i in items if (i.x1 + i.x2) / 2 < cut]
        right = [i for i in items if (i.x1 + i.x2) / 2 >= cut]
        span = lambda part: max(i.y2 for i in part) - min(i.y1 for i in part)  # noqa: E731
        if (left and right and span(left) >= height / 3 and span(right) >= height / 3
                and _is_text_column(left) and _is_text_column(right)):
            first, second = (right, left) if rtl else (left, right)
            return xy_cut(first, min_gap, depth + 1, rtl) + xy_cut(second, min_gap, depth + 1, rtl)
    gaps = _gaps([(i.y1, i.y2) for i in items], min_gap / 4)
    if not gaps:
        return reading
    # Cut at the widest horizontal gaps only: a title's gap before aligned columns, not every line gap.
    widest = max(stop - start for start, stop in gaps)
    cuts = [stop for start, stop in gaps if stop - start >= 0.8 * widest]
    bands: list[list] = [[] for _ in range(len(cuts) + 1)]
    for item in items:
        centre = (item.y1 + item.y2) / 2
        bands[sum(1 for stop in cuts if centre >= stop)].append(item)
    return [item for band in bands if band for item in xy_cut(band, min_gap, depth + 1, rtl)]


MIN_COLUMN_CHARS = 12
COLUMN_GAP = 0.006  # of the page width: the narrowest gutter between columns (OCR line boxes are padded)


def _is_text_column(items: list) -> bool:
    """Lines long enough to be running text: a column of prices or table numbers is not read on its own."""
    lengths = []
    for item in items:
        if isinstance(item, Block):
            lengths.extend(len(ln.text) for ln in item.lines) if item.lines else lengths.append(MIN_COLUMN_CHARS)
        else:
            lengths.append(len(item.text))
    return median(lengths) >= MIN_COLUMN_CHARS if lengths else True


def rows(items: list) -> list[list]:
    """Items (lines or blocks) grouped into visual rows (vertical overlap over half the smaller height),
    top to bottom, each row left to right."""
    grouped: list[list] = []
    for item in sorted(items, key=lambda i: (i.y1 + i.y2) / 2):
        if grouped:
            last = grouped[-1]
            top, bottom = max(i.y1 for i in last), min(i.y2 for i in last)
            overlap = min(bottom, item.y2) - max(top, item.y1)
            if overlap > 0.5 * min(item.y2 - item.y1, median(i.y2 - i.y1 for i in last)):
                last.append(item)
                continue
        grouped.append([item])
    return [sorted(row, key=lambda i: i.x1) for row in grouped]


def paragraphs(lines: list[Line], min_gap: float, rtl: bool = False) -> list[str]:
    """Lines in reading order joined into paragraphs; a vertical gap over ~0.8 line heights starts a new one."""
    ordered = xy_cut(lines, min_gap, rtl=rtl)
    if not ordered:
        return []
    heights = median(ln.height for ln in ordered)
    out: list[list[str]] = [[ordered[0].text]]
    for prev, line in zip(ordered, ordered[1:]):
        new_column = line.y1 < prev.y1 - heights
        if line.y1 - prev.y2 > 0.8 * heights or new_column:
            out.append([])
        out[-1].append(line.text)
    return [joined(p) for p in out if any(t.strip() for t in p)]


SOFT_HYPHEN = "\x02"  # PDFium's mark for a word hyphenated at the end of a line


def joined(pieces: list[str]) -> str:
    """Pieces of one paragraph joined by spaces, except a word PDFium marks as split across lines."""
    out = ""
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        if out.endswith(SOFT_HYPHEN):
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


def to_markdown(lines: list[Line], regions: list[Block], page_width: float, page_height: float) -> str:
    """The page as markdown: headings, paragraphs, HTML tables, ``<!-- image -->`` for figures, no page furniture."""
    min_gap = max(page_width * COLUMN_GAP, 4.0)
    rtl = is_rtl(lines)
    body_height = median(ln.height for ln in lines) if lines else 0.0
    blocks = xy_cut(assign(lines, regions), min_gap, rtl=rtl)
    parts: list[str] = []
    loose: list[Line] = []

    def flush() -> None:
        parts.extend(paragraphs(loose, min_gap, rtl))
        loose.clear()

    for block in blocks:
        if block.loose:
            loose.append(block.lines[0])  # lines outside every region: paragraphs by their gaps
            continue
        flush()
        if block.kind in FURNITURE and (block.y2 < 0.15 * page_height or block.y1 > 0.85 * page_height):
            continue  # running heads and page numbers, where they sit
        if block.kind in FIGURES and _is_picture(block, page_width * page_height):
            parts.append("<!-- image -->")
        elif block.kind in TABLES and len(block.lines) > 1:
            parts.append(table_html(block.lines))
        elif block.kind in HEADINGS and _is_heading(block.lines, body_height):
            text = joined([ln.text for ln in xy_cut(block.lines, min_gap, rtl=rtl)])
            if text:
                parts.append(f"## {_clean_heading(text)}")
        else:
            parts.extend(paragraphs(block.lines, min_gap, rtl))
    flush()
    return "\n\n".join(p for p in parts if p.strip())


def _is_heading(lines: list[Line], body_height: float) -> bool:
    """A title region holding one short line, or a few lines in a larger type than the body's; a paragraph
    the model calls a title stays a paragraph."""
    chars = sum(len(ln.text) for ln in lines)
    if len(lines) == 1 and chars <= 80:
        return True
    return len(lines) <= 3 and chars <= 150 and median(ln.height for ln in lines) >= 1.15 * body_height


def _clean_heading(text: str) -> str:
    return re.sub(r"^#+\s*", "", text).strip()


def to_text(lines: list[Line], page_width: float) -> str:
    """Plain text in reading order, one visual line per line, a blank line between columns and blocks."""
    min_gap = max(page_width * COLUMN_GAP, 4.0)
    ordered = xy_cut(lines, min_gap, rtl=is_rtl(lines))
    out: list[str] = []
    for prev, line in zip([None, *ordered], ordered):
        if prev is not None and (line.y1 - prev.y2 > 0.8 * line.height or line.y1 < prev.y1 - line.height):
            out.append("")
        out.append(line.text.strip().replace(SOFT_HYPHEN, "-"))
    return "\n".join(out).strip()
