"""Reading order from boxes, and the check of a "table" region against what it holds.

Pure geometry over anything with ``x1, y1, x2, y2`` (text lines, or blocks holding lines).
Columns are found before anything is ordered: a recursive XY-cut tries a vertical gutter
first (an empty stretch in the union of the boxes' x-extents, both sides running down the
block and both sides running text), and only where no gutter splits a block are its boxes
cut into horizontal bands. Text lines, not layout regions, carry the geometry: a region box
that overshoots the gutter would hide it.

The rules use the boxes' own scale (line heights, characters per line), never a page's.
"""

from __future__ import annotations

import re
from statistics import median
from typing import Any

MIN_COLUMN_CHARS = 12  # a column whose lines hold fewer characters (prices, table numbers) is not read alone
PROSE_WORDS = 5  # a line of this many words, mostly letters, is running text
_NUMERIC = re.compile(r"^[\s\d.,:;%+\-–—()/$€£¥*]+$")


def gaps(intervals: list[tuple[float, float]], min_gap: float) -> list[tuple[float, float]]:
    """Empty stretches at least ``min_gap`` wide between the union of ``intervals``."""
    found: list[tuple[float, float]] = []
    ordered = sorted(intervals)
    end = ordered[0][1]
    for start, stop in ordered[1:]:
        if start - end >= min_gap:
            found.append((end, start))
        end = max(end, stop)
    return found


def _texts(item: Any) -> list[str]:
    lines = getattr(item, "lines", None)
    if lines is not None:
        return [ln.text for ln in lines] or ["x" * MIN_COLUMN_CHARS]
    return [item.text]


def is_text_column(items: list) -> bool:
    """Lines long enough to be running text: a column of prices or table numbers is not read on its own.

    Judged by the line its middle character sits in, not by the middle line: a PDF's text layer gives an
    equation's glyphs as runs of one or two characters, dozens of them beside a column of full lines."""
    lengths = sorted(len(t) for item in items for t in _texts(item))
    total, seen = sum(lengths), 0
    for length in lengths:
        seen += length
        if seen * 2 >= total:
            return length >= MIN_COLUMN_CHARS
    return True


def rows(items: list) -> list[list]:
    """Items grouped into visual rows (vertical overlap over half the smaller height), top to bottom, each
    row left to right."""
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


def _core(item: Any) -> tuple[float, float]:
    """A text line's x-extent less half a line height at each end: detector boxes are padded, and on a
    skewed scan their upright bounds overshoot, so the boxes of two columns can overlap across a narrow
    gutter that their ink does not cross. Blocks keep their extent."""
    if getattr(item, "lines", None) is not None:
        return item.x1, item.x2
    trim = min(0.5 * (item.y2 - item.y1), 0.25 * (item.x2 - item.x1))
    return item.x1 + trim, item.x2 - trim


def _span(part: list) -> float:
    return max(i.y2 for i in part) - min(i.y1 for i in part)


def _columns(left: list, right: list, height: float) -> bool:
    """Both sides of a gutter run down at least a third of the block's height and read as running text."""
    return (_span(left) >= height / 3 and _span(right) >= height / 3 and is_text_column(left)
            and is_text_column(right))


def xy_cut(items: list, min_gap: float, depth: int = 0, rtl: bool = False) -> list:
    """``items`` in reading order (columns right to left when ``rtl``).

    A vertical gutter splits a block into columns when both sides run down at least a third of
    the block's height and both read as running text (so a table's cell gaps, a price column or
    a short side note do not); otherwise the widest horizontal gaps split it into bands read top
    to bottom, each band cut again.
    """
    if len(items) <= 1:
        return list(items)
    reading = [item for row in rows(items) for item in (row[::-1] if rtl else row)]
    if depth > 60:
        return reading
    height = max(max(i.y2 for i in items) - min(i.y1 for i in items), 1.0)
    for start, stop in sorted(gaps([_core(i) for i in items], min_gap), key=lambda g: g[0] - g[1]):
        cut = (start + stop) / 2
        left = [i for i in items if (i.x1 + i.x2) / 2 < cut]
        right = [i for i in items if (i.x1 + i.x2) / 2 >= cut]
        if left and right and _columns(left, right, height):
            first, second = (right, left) if rtl else (left, right)
            return xy_cut(first, min_gap, depth + 1, rtl) + xy_cut(second, min_gap, depth + 1, rtl)
    found = gaps([(i.y1, i.y2) for i in items], min_gap / 4)
    if not found:
        crossed = _crossed_gutter(items, height)
        if crossed is None:
            return reading
        first, middle, second = crossed
        if rtl:
            first, second = second, first
        return [item for part in (first, middle, second) for item in xy_cut(part, min_gap, depth + 1, rtl)]
    # Cut at the widest horizontal gaps only: a title's gap before aligned columns, not every line gap.
    widest = max(stop - start for start, stop in found)
    cuts = [stop for start, stop in found if stop - start >= 0.8 * widest]
    bands: list[list] = [[] for _ in range(len(cuts) + 1)]
    for item in items:
        centre = (item.y1 + item.y2) / 2
        bands[sum(1 for stop in cuts if centre >= stop)].append(item)
    return [item for band in bands if band for item in xy_cut(band, min_gap, depth + 1, rtl)]


MAX_CROSSERS = 0.1  # share of a block's boxes that may run across a gutter that the rest leave empty


def _crossed_gutter(items: list, height: float) -> tuple[list, list, list] | None:
    """Two columns with no horizontal gap to cut between them, whose gutter a few boxes run across (a
    caption or pull quote set between the columns, an inset in a magazine page): the columns split at
    the gutter, each read whole, the crossing boxes read between them (those above or below both
    columns' text, before or after them).

    Candidate gutters start at a box's right edge; the one crossed by the fewest boxes (at most a tenth
    of them) with running text down a third of the block on both sides wins. ``None``: no such gutter.
    """
    cores = [_core(i) for i in items]
    best: tuple[int, list, list, list] | None = None
    for x in sorted({round(c[1]) + 1 for c in cores}):
        left = [i for i, c in zip(items, cores, strict=True) if c[1] < x]
        right = [i for i, c in zip(items, cores, strict=True) if c[0] > x]
        across = [i for i, c in zip(items, cores, strict=True) if c[0] <= x <= c[1]]
        if (not across or len(across) > MAX_CROSSERS * len(items) or len(left) < 3 or len(right) < 3
                or (best is not None and len(across) >= best[0])):
            continue
        if _columns(left, right, height):
            best = (len(across), left, across, right)
    if best is None:
        return None
    _, left, across, right = best
    top = min((i.y1 + i.y2) / 2 for i in left + right)
    bottom = max((i.y1 + i.y2) / 2 for i in left + right)
    above = [i for i in across if (i.y1 + i.y2) / 2 < top]
    below = [i for i in across if (i.y1 + i.y2) / 2 > bottom]
    between = [i for i in across if top <= (i.y1 + i.y2) / 2 <= bottom]
    # Boxes above or below both columns open or close the block: they go with the first and last part.
    return above + left, between, right + below


def is_prose(text: str) -> bool:
    """A line of running text: several words, mostly letters."""
    words = text.split()
    letters = sum(ch.isalpha() for ch in text)
    return len(words) >= PROSE_WORDS and letters >= 0.6 * len(text.replace(" ", ""))


def is_numeric(text: str) -> bool:
    return bool(_NUMERIC.match(text)) and any(ch.isdigit() for ch in text)


def looks_like_table(lines: list) -> bool:
    """Whether the lines of a region the layout model calls a table read as one.

    Running text is not a table: when most lines are prose (several words, mostly letters), the
    region is columns of text, however aligned. A table has rows of several cells: at least half
    its rows hold two or more boxes side by side, or its cells are mostly numbers.
    """
    if len(lines) < 2:
        return False
    prose = sum(is_prose(ln.text) for ln in lines)
    if prose >= 0.5 * len(lines):
        return False
    grid = rows(lines)
    multi = sum(1 for row in grid if len(row) >= 2)
    numeric = sum(is_numeric(ln.text) for ln in lines)
    return multi >= 0.5 * len(grid) or numeric >= 0.3 * len(lines)


def split_at_gutters(lines: list, make: Any) -> list:
    """Lines that run across a column gutter (the detector joined two columns' lines, or a drop cap's)
    split in two at the gutter.

    A gutter inside a line is where, among the body-sized lines a few rows around it, at least three
    end and at least three start a little further right: the edges of two columns. The text is cut at
    the space nearest the gutter's share of the line's width. Lines in a larger type than the body
    (titles across columns) are left whole. ``make(line, text, x1, x2)`` builds a piece.
    """
    if len(lines) < 7:
        return list(lines)
    height = median(ln.y2 - ln.y1 for ln in lines)
    by_centre = sorted(lines, key=lambda ln: (ln.y1 + ln.y2) / 2)
    centres = [(ln.y1 + ln.y2) / 2 for ln in by_centre]
    import bisect

    out = []
    for line in lines:
        out.extend(_split_line(line, by_centre, centres, height, make, bisect))
    return out


def _split_line(line: Any, by_centre: list, centres: list, height: float, make: Any, bisect: Any) -> list:
    if line.y2 - line.y1 > 1.5 * height or line.x2 - line.x1 < 6 * height or " " not in line.text.strip():
        return [line]
    cy = (line.y1 + line.y2) / 2
    lo, hi = bisect.bisect_left(centres, cy - 6 * height), bisect.bisect_right(centres, cy + 6 * height)
    near = [m for m in by_centre[lo:hi] if m is not line and m.y2 - m.y1 <= 1.5 * height]
    inside = line.x1 + 2 * height, line.x2 - 2 * height
    ends = sorted(m.x2 for m in near if inside[0] < m.x2 < inside[1])
    starts = sorted(m.x1 for m in near if inside[0] < m.x1 < inside[1])
    for end in _clusters(ends, height):
        for start in _clusters(starts, height):
            if 0 < start - end < 4 * height and not any(
                    m.x1 < end - height and m.x2 > start + height for m in near):
                cut = _space_near(line.text, (end + start) / 2 - line.x1, line.x2 - line.x1)
                if cut is None:
                    continue
                left_text, right_text = line.text[:cut].strip(), line.text[cut:].strip()
                left = make(line, left_text, line.x1, end)
                right = make(line, right_text, start, line.x2)
                return [left, *_split_line(right, by_centre, centres, height, make, bisect)]
    return [line]


def _clusters(values: list[float], height: float, least: int = 3) -> list[float]:
    """Positions where ``least`` or more sorted values lie within one line height: each such cluster's median."""
    found, run = [], []
    for value in values:
        if run and value - run[0] > height:
            if len(run) >= least:
                found.append(median(run))
            run = []
        run.append(value)
    if len(run) >= least:
        found.append(median(run))
    return found


def _space_near(text: str, offset: float, width: float) -> int | None:
    """The index of the space nearest the place ``offset`` of ``width`` along ``text`` (within a fifth)."""
    target = offset / max(width, 1.0) * len(text)
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if not spaces:
        return None
    best = min(spaces, key=lambda i: abs(i - target))
    return best if abs(best - target) <= 0.2 * len(text) and 0 < best < len(text) - 1 else None
