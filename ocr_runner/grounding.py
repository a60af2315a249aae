"""Post-processing of model output: grounding boxes to pixels, tags stripped from text.

DeepSeek-OCR marks regions as ``<|ref|>label<|/ref|><|det|>[[x1, y1, x2, y2], ...]<|/det|>``
with coordinates on a 0..999 grid over the original image.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

GRID = 999
_REF_DET = re.compile(r"<\|ref\|>(?P<label>.*?)<\|/ref\|>\s*<\|det\|>(?P<coords>.*?)<\|/det\|>", re.DOTALL)
_STRAY_TAGS = re.compile(r"<\|/?(?:ref|det|grounding)\|>")
_SPECIAL_END = re.compile(r"<｜end▁of▁sentence｜>|<\|end_of_text\|>")


@dataclass(frozen=True)
class Box:
    """A labelled region in pixels of the original image."""

    label: str
    x1: int
    y1: int
    x2: int
    y2: int


def _parse_coords(raw: str) -> list[list[float]]:
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return []
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [list(b) for b in value if isinstance(b, (list, tuple)) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)]


def _to_pixels(coord: float, size: int) -> int:
    return int(round(min(max(coord, 0), GRID) / GRID * size))


def extract_boxes(text: str, width: int, height: int) -> list[Box]:
    """Every grounding box in ``text``, converted to pixels and clamped to the image."""
    boxes: list[Box] = []
    for match in _REF_DET.finditer(text):
        label = match.group("label").strip()
        for x1, y1, x2, y2 in _parse_coords(match.group("coords")):
            px1, px2 = sorted((_to_pixels(x1, width), _to_pixels(x2, width)))
            py1, py2 = sorted((_to_pixels(y1, height), _to_pixels(y2, height)))
            boxes.append(Box(label, px1, py1, px2, py2))
    return boxes


def strip_grounding(text: str) -> str:
    """Text without grounding markup: region tags removed, stray tags dropped, blank runs collapsed."""
    text = _REF_DET.sub("", text)
    text = _STRAY_TAGS.sub("", text)
    text = _SPECIAL_END.sub("", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


_FENCED_DOCUMENT = re.compile(r"^```(?:markdown|md)?\s*\n(?P<body>.*?)\n```\s*$", re.DOTALL)
_DISPLAY_MATH = re.compile(r"\\\[(?P<body>.+?)\\\]", re.DOTALL)
_INLINE_MATH = re.compile(r"\\\((?P<body>.+?)\\\)", re.DOTALL)


def tidy_markdown(text: str) -> str:
    """One markdown dialect for every engine: no wrapping code fence, ``$``/``$$`` math, no trailing
    spaces, at most one blank line between blocks. (DeepSeek writes ``\\[ \\]`` and ``\\( \\)``.)"""
    match = _FENCED_DOCUMENT.match(text.strip())
    if match:
        text = match.group("body")
    text = _DISPLAY_MATH.sub(lambda m: f"$${m.group('body').strip()}$$", text)
    text = _INLINE_MATH.sub(lambda m: f"${m.group('body').strip()}$", text)
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def to_grid(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> list[int]:
    """Pixel box to the model's 0..999 grid (used by engines that measure in pixels)."""
    def scale(v: float, size: int) -> int:
        return int(round(min(max(v / max(size, 1), 0.0), 1.0) * GRID))

    return [scale(x1, width), scale(y1, height), scale(x2, width), scale(y2, height)]


def grounding_text(label: str, grid_boxes: list[list[int]]) -> str:
    """Format boxes the way the model does, so all engines share one post-processing path."""
    return f"<|ref|>{label}<|/ref|><|det|>{grid_boxes}<|/det|>"
