"""Image outputs: figure crops referenced from markdown, and pages annotated with their boxes."""

from __future__ import annotations

import io
import re

from PIL import Image, ImageDraw

from .grounding import Box

FIGURE_LABELS = {"image", "figure", "chart", "picture"}
_FIGURE_REF = re.compile(
    r"<\|ref\|>(?P<label>image|figure|chart|picture)<\|/ref\|>\s*<\|det\|>.*?<\|/det\|>", re.DOTALL | re.IGNORECASE
)
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def figure_name(page: int, index: int) -> str:
    return f"images/page-{page}-figure-{index}.png"


def crop_figures(image: Image.Image, boxes: list[Box], page: int) -> list[tuple[str, Box, bytes]]:
    """PNG crops of every figure-like box, named the way ``link_figures`` references them."""
    figures = [b for b in boxes if b.label.lower() in FIGURE_LABELS and b.x2 > b.x1 and b.y2 > b.y1]
    return [(figure_name(page, i), b, png(image.crop((b.x1, b.y1, b.x2, b.y2)))) for i, b in enumerate(figures)]


def link_figures(text: str, page: int) -> str:
    """Replace each figure's grounding markup with a markdown image link to its crop."""
    counter = iter(range(1_000_000))
    return _FIGURE_REF.sub(lambda _: f"![]({figure_name(page, next(counter))})", text)


def annotate(image: Image.Image, boxes: list[Box]) -> bytes:
    """The page with each box outlined and labelled, as PNG."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 400))
    colours: dict[str, str] = {}
    for box in boxes:
        colour = colours.setdefault(box.label, PALETTE[len(colours) % len(PALETTE)])
        draw.rectangle((box.x1, box.y1, box.x2, box.y2), outline=colour, width=width)
        draw.text((box.x1 + width, max(0, box.y1 - 12 - width)), box.label[:40], fill=colour)
    return png(canvas)


__all__ = ["annotate", "crop_figures", "figure_name", "link_figures"]
