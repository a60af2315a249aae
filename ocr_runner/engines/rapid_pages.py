"""One page image read by one reader, in stages.

The page's lines are found once. A sample of them (its longest lines) is recognised first to judge the page:
which way up it is, whether the recogniser reads its script at all, and whether it holds CJK text. Only then is
the rest read, once, upright, with the output head the sample calls for. A page in a script the recogniser has no
model for is not read in full (Tesseract reads it); a page on end or upside down is detected again turned, but its
lines are not all recognised twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from .layout import Bounds
from .rapid_models import ALL, ALPHABETIC, is_cjk
from .rapid_readers import Found, Reader, bounds

SAMPLE = 8  # lines recognised to judge a page before the rest is read
UNSURE_SCORE = 0.8  # mean recognition confidence under which a page may be upside down
FEW_CHARS = 40  # a page with less text than this is checked for another script too (OSD on it is quick)
# Mean confidence under which the page's script is checked: PP-OCRv6 reads Latin print at 0.95-1.0, and
# guesses at scripts it lacks (blackletter, Kannada) with 0.75-0.935. A check on a Latin page costs about a
# second of script detection and changes nothing: detection on unscaled glyphs names Latin surely.
SCRIPT_CHECK_SCORE = 0.95
READ_SHARE = 0.4  # recognised characters per expected character under which a page was not really read
TEXT_SCORE = 0.5  # RapidOCR drops a line read with less confidence than this


@dataclass
class PageReading:
    """What reading a page gave: the page as read (turned upright where it was not), RapidOCR's output for it
    (None while the page is ``unread`` and not finished), and the lines detected on the page as it came."""

    reader: Reader
    pixels: Any
    found: Found | None
    detected: list[Bounds]
    unread: bool
    output: Any = None

    def finish(self) -> Any:
        """RapidOCR's output for the whole page, reading the lines not read yet."""
        if self.output is None:
            self.output = _finish(self.reader, self.found) if self.found is not None else _EMPTY
        return self.output


_EMPTY = SimpleNamespace(boxes=None, txts=(), scores=())


def read_page(reader: Reader, pixels: Any) -> PageReading:
    """Find the page's lines, judge the page on a sample, turn it upright, and read it unless the sample shows
    the recogniser cannot (then ``unread``, and ``finish`` reads the rest if nothing else will)."""
    found = reader.find(pixels)
    if found is None:  # nothing found at all: a blank page, or a script the detector does not see as text
        return PageReading(reader, pixels, None, [], unread=True)
    detected = found.boxes()
    sample = _sample(detected)
    reader.recognise(found, sample)
    turn = _turn(reader, found, sample, detected)
    if turn:
        found = reader.turned(found, turn)
        pixels, sample = found.original, _sample(found.boxes())
        reader.recognise(found, sample)
    if _unread(_sampled(found, sample)):
        return PageReading(reader, pixels, found, detected, unread=True)
    output = _finish(reader, found)
    return PageReading(reader, pixels, found, detected, unread=_unread(output), output=output)


def _sample(boxes: list[Bounds]) -> list[int]:
    """The indices of the page's ``SAMPLE`` longest lines (see ``longest``), in page order."""
    return sorted(_longest(boxes))


def longest(boxes: list[Bounds]) -> list[Bounds]:
    """The ``SAMPLE`` longest lines: those holding the most characters (long side over short side)."""
    return [boxes[i] for i in _longest(boxes)]


def _longest(boxes: list[Bounds]) -> list[int]:
    return sorted(range(len(boxes)), key=lambda i: -_length(boxes[i]))[:SAMPLE]


def _length(box: Bounds) -> float:
    x1, y1, x2, y2 = box
    return max(x2 - x1, y2 - y1) / max(min(x2 - x1, y2 - y1), 1.0)


def _turn(reader: Reader, found: Found, sample: list[int], detected: list[Bounds]) -> int:
    """Quarter turns (anticlockwise, as ``np.rot90``) that bring the page upright, judged on the sample.

    A page whose lines mostly stand on end is turned one way or the other: RapidOCR crops a line on end turned a
    quarter anticlockwise, so the sample as read is the page turned by 1, the crops turned half round are it turned
    by 3, and the crops turned back are the page as it is (a table of narrow cells stays). A page read unsure may
    be upside down: its crops are read turned half round too. The most confident reading wins.

    RapidOCR's per-line 180-degree classifier stays off: it flips short upright lines (numbers in tables) by
    mistake, and a whole page upside down is better turned as a page (lines then keep their order)."""
    import numpy as np

    crops = [found.crops[i] for i in sample]
    read = _sampled(found, sample)
    as_read = _confidence(read)
    if _mostly_vertical(detected):
        candidates = {1: as_read, 3: _confidence_of(reader, [np.rot90(c, 2) for c in crops]),
                      0: _confidence_of(reader, [np.rot90(c, -1) if _on_end(detected[i]) else c
                                                 for i, c in zip(sample, crops, strict=True)])}
        return max(candidates, key=lambda turn: (candidates[turn], turn == 0))
    if _mean_score(read) < UNSURE_SCORE:
        return 2 if _confidence_of(reader, [np.rot90(c, 2) for c in crops]) > as_read else 0
    return 0


def _confidence_of(reader: Reader, crops: list[Any]) -> float:
    texts, scores = reader.recognise_crops(crops)
    return sum(len(t) * s for t, s in zip(texts, scores, strict=True) if _kept(t, s))


def _finish(reader: Reader, found: Found) -> Any:
    """Read the lines not read yet, with the alphabetic head where the lines read so far hold no CJK character.
    A line that head reads unsure is read again with every character: kept that way if it then holds CJK (a
    Chinese name on an English page)."""
    read = [t for t in found.texts if t is not None]
    head = ALL if any(is_cjk(c) for t in read for c in t) else ALPHABETIC
    rest = found.pending()
    reader.recognise(found, rest, head)
    if head == ALPHABETIC:
        unsure = [i for i in rest if (found.scores[i] or 0.0) < UNSURE_SCORE]
        texts, scores = reader.recognise_crops([found.crops[i] for i in unsure])
        for i, text, score in zip(unsure, texts, scores, strict=True):
            if any(is_cjk(c) for c in text):
                found.texts[i], found.scores[i] = text, score
    return reader.output(found)


def _sampled(found: Found, indices: list[int]) -> Any:
    """The read lines among ``indices`` as RapidOCR would return them (empty and unsure lines dropped)."""
    kept = [i for i in indices if _kept(found.texts[i], found.scores[i])]
    if not kept:
        return _EMPTY
    return SimpleNamespace(boxes=[found.detection.boxes[i] for i in kept], txts=[found.texts[i] for i in kept],
                           scores=[found.scores[i] for i in kept])


def _kept(text: str | None, score: float | None) -> bool:
    """A line RapidOCR keeps in its result: read, not empty, confident enough."""
    return bool((text or "").strip()) and (score or 0.0) >= TEXT_SCORE


def _on_end(box: Bounds) -> bool:
    """A box RapidOCR crops turned (its crop at least 1.5 times taller than wide)."""
    x1, y1, x2, y2 = box
    return (y2 - y1) >= 1.5 * (x2 - x1)


def _mostly_vertical(boxes: list[Bounds]) -> bool:
    """Most detected lines taller than wide: the page is probably turned by 90 degrees."""
    tall = sum((y2 - y1) > 1.5 * (x2 - x1) for x1, y1, x2, y2 in boxes)
    return tall > len(boxes) / 2


def _unread(output: Any) -> bool:
    """Text was not found or not read: almost no characters on the page, few confident characters for the
    size of the boxes (a script the recogniser has no model for gives empty or low-confidence strings), or an
    unsure reading overall.

    A line box of width w and height h holds about w / (0.6 h) characters of Latin type (CJK: fewer,
    wider ones, still well above the bar)."""
    if output.boxes is None or len(output.boxes) == 0 or not output.txts:
        return True  # nothing found at all: a blank page, or a script the detector does not see as text
    if sum(len(t.strip()) for t in output.txts) < FEW_CHARS:
        return True
    expected, got = 0.0, 0
    for box, text, score in zip(output.boxes, output.txts, output.scores, strict=True):
        x1, y1, x2, y2 = bounds(box)
        expected += max(x2 - x1, 1.0) / (0.6 * max(min(y2 - y1, x2 - x1), 1.0))
        got += len((text or "").strip()) if float(score) >= 0.5 else 0
    return got < READ_SHARE * expected or _mean_score(output) < SCRIPT_CHECK_SCORE


def _mean_score(output: Any) -> float:
    if output.boxes is None or not output.txts:
        return 1.0
    return float(sum(float(s) for s in output.scores) / len(output.scores))


def _confidence(output: Any) -> float:
    if output.boxes is None or not output.txts:
        return 0.0
    return float(sum(len(t) * float(s) for t, s in zip(output.txts, output.scores, strict=True)))
