"""Judging a PDF page's text layer before it stands in for recognition, and tidying its spacing.

A text layer is exact when the PDF's maker wrote words with their Unicode; it is not when the
glyphs were placed one by one (letter-spaced runs: "T h e 2 0 M o s t"), when glyphs carry no
Unicode (private-use or replacement characters), or when words were split by font changes. Such
a page is recognised from its pixels instead. Pure text rules, no PDF library here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

LETTER_SPACED = 0.3  # share of words that are one letter, over which the layer is letter-spaced
UNMAPPED = 0.02  # share of characters with no real Unicode, over which the layer is unusable
_SPACE_BEFORE = re.compile(r"(?<=\S) +(?=[,;:!?%)\]}])|(?<=[^\W\d]) +(?=\.(?:\s|$))")
_SPACE_AFTER = re.compile(r"(?<=[(\[{]) +(?=\S)")
_SINGLE_WORDS = frozenset("aAIoOyeuäàáé\u0648&+=-–—/|")  # one-letter words (Arabic-script "و": and) and signs


def _unmapped(ch: str) -> bool:
    code = ord(ch)
    return ch == "\ufffd" or 0xE000 <= code <= 0xF8FF or (code < 0x20 and ch not in "\t\n\r\x02")


def judge(texts: list[str]) -> str | None:
    """Why the page's text layer must not be used (``None``: it may be), from its runs' texts."""
    joined = " ".join(texts)
    chars = [ch for ch in joined if not ch.isspace()]
    if not chars:
        return "empty"
    if sum(_unmapped(ch) for ch in chars) > UNMAPPED * len(chars):
        return "glyphs without Unicode"
    words = joined.split()
    singles = sum(1 for w in words if len(w) == 1 and w.isalnum() and w not in _SINGLE_WORDS)
    if len(words) >= 20 and singles > LETTER_SPACED * len(words):
        return "letter-spaced"
    return None


def tidy(text: str) -> str:
    """A run's text with PDF spacing artefacts removed: no space before closing punctuation, none after an
    opening bracket."""
    return _SPACE_AFTER.sub("", _SPACE_BEFORE.sub("", text))


LAM = "\u0644"
ALEFS = frozenset("\u0627\u0623\u0625\u0622")  # alef bare, with hamza above or below, with madda


def logical_ligatures(text: str, one_glyph: Callable[[int], bool]) -> str:
    """``text`` with each lam-alef ligature whose Unicode was given in visual order put back in logical order.

    Arabic writes lam followed by alef as one glyph; some PDF makers (Word among them) map that glyph to
    alef then lam, so "\u0627\u0644\u0625\u0646\u062a\u0627\u062c\u064a\u0629" comes out
    "\u0627\u0625\u0644\u0646\u062a\u0627\u062c\u064a\u0629". An alef and a lam drawn as one glyph
    (``one_glyph(i)``: characters ``i`` and ``i + 1`` share it) are swapped back, lam first.
    """
    fixed = list(text)
    for i in range(len(text) - 1):
        if text[i] in ALEFS and text[i + 1] == LAM and one_glyph(i):
            fixed[i], fixed[i + 1] = LAM, text[i]
    return "".join(fixed)
