"""Documents: one image, or a PDF rasterised page by page with pypdfium2.

A request's file becomes a list of pages, each an encoded image the engines read
exactly like an uploaded image. Page ranges and limits are checked here, before
any page reaches the engine.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from itertools import chain
from typing import Any

from .errors import InvalidInput, PayloadTooLarge
from .images import PDF_MAGIC, load_image

# PDFium is not thread-safe; every call into it goes through this lock.
_PDFIUM_LOCK = threading.Lock()
_RANGE_PART = re.compile(r"^\s*([0-9]{1,6})\s*(?:-\s*([0-9]{0,6})\s*)?$")


@dataclass(frozen=True)
class TextRun:
    """A run of text from a PDF page's text layer, boxed in pixels of the rendered page."""

    text: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Page:
    number: int  # 1-based, as printed in the document
    image: bytes
    width: int
    height: int
    text_layer: tuple[TextRun, ...] = ()  # PDFs: the page's own text, when it carries enough of it


@dataclass(frozen=True)
class Document:
    kind: str  # "image" or "pdf"
    page_count: int  # pages in the whole file
    pages: list[Page]  # the selected pages, in order


def is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(PDF_MAGIC)


def parse_page_range(spec: str | None, page_count: int, field: str = "pages") -> list[int]:
    """``"1-3,5,8-"`` to sorted unique 1-based page numbers; ``None``/empty means every page."""
    if spec is None or not spec.strip():
        return list(range(1, page_count + 1))
    selected: set[int] = set()
    for part in spec.split(","):
        match = _RANGE_PART.match(part)
        if not match:
            raise InvalidInput(f"{field}={spec!r} is not a page range like '1-3,5,8-'", field=field)
        first = int(match.group(1))
        last = first if match.group(2) is None else int(match.group(2) or page_count)
        if first < 1 or last < first:
            raise InvalidInput(f"{field}: {part.strip()!r} is not a valid range", field=field)
        if last > page_count:
            raise InvalidInput(f"{field}: page {last} is out of bounds (the document has {page_count})", field=field)
        selected.update(range(first, last + 1))
    return sorted(selected)


def pdf_dpi(base_size: int, crop_mode: bool, page_long_side_pt: float) -> float:
    """Render resolution: 144 DPI for tiled reading, else just enough for the global view."""
    if crop_mode:
        return 144.0
    return max(72.0, min(144.0, base_size / (page_long_side_pt / 72.0)))


def load_document(
    data: bytes,
    *,
    field: str,
    pages: str | None,
    max_pages: int,
    max_pixels: int,
    base_size: int,
    crop_mode: bool,
) -> Document:
    if not is_pdf(data):
        parse_page_range(pages, 1)  # a single image is a one-page document
        image = load_image(data, max_pixels=max_pixels, field=field)
        return Document("image", 1, [Page(1, data, image.width, image.height)])
    with _PDFIUM_LOCK:
        return _render_pdf(data, field, pages, max_pages, max_pixels, base_size, crop_mode)


def _render_pdf(
    data: bytes, field: str, pages: str | None, max_pages: int, max_pixels: int, base_size: int, crop_mode: bool
) -> Document:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise InvalidInput(f"{field} is an encrypted PDF; send it without a password", field=field) from None
        raise InvalidInput(f"{field} is not a readable PDF ({exc})", field=field) from None
    try:
        page_count = len(pdf)
        if page_count == 0:
            raise InvalidInput(f"{field} is a PDF with no pages", field=field)
        numbers = parse_page_range(pages, page_count)
        if len(numbers) > max_pages:
            raise PayloadTooLarge(
                f"{len(numbers)} pages selected, over the limit of {max_pages}; use 'pages' to pick a range",
                field="pages",
            )
        pdf.init_forms()  # draw filled-in form field values too
        rendered = []
        for number in numbers:
            try:
                page = pdf[number - 1]
            except pdfium.PdfiumError as exc:
                raise InvalidInput(f"{field}: page {number} could not be loaded ({exc})", field=field) from None
            try:
                text_layer = _text_layer(page, scale=pdf_dpi(base_size, crop_mode, max(page.get_size())) / 72.0)
                width_pt, height_pt = page.get_size()
                scale = pdf_dpi(base_size, crop_mode, max(width_pt, height_pt)) / 72.0
                if width_pt * scale * height_pt * scale > max_pixels:
                    raise PayloadTooLarge(f"page {number} would render over the pixel limit of {max_pixels}", field=field)
                bitmap = page.render(scale=scale, may_draw_forms=True)
                try:
                    image = bitmap.to_pil().convert("RGB")
                finally:
                    bitmap.close()
            except pdfium.PdfiumError as exc:
                raise InvalidInput(f"{field}: page {number} could not be rendered ({exc})", field=field) from None
            finally:
                page.close()
            if min(image.size) < 1:
                raise InvalidInput(f"{field}: page {number} has no area", field=field)
            buffer = io.BytesIO()
            # The resolution travels in the PNG: Tesseract's layout analysis needs it (see engines.tesseract).
            image.save(buffer, format="PNG", compress_level=1, dpi=(scale * 72.0, scale * 72.0))
            rendered.append(Page(number, buffer.getvalue(), image.width, image.height, text_layer))
        return Document("pdf", page_count, rendered)
    finally:
        pdf.close()


MIN_TEXT_LAYER_CHARS = 16  # fewer printable characters than this: a scan (or a stray label), not a text page


def _text_layer(page: object, scale: float) -> tuple[TextRun, ...]:
    """The page's text runs (PDFium's text rectangles) in pixels at ``scale``; empty for image-only pages and
    for pages whose layer fails ``engines.text_layer.judge`` (those are recognised from their pixels)."""
    from .engines.text_layer import judge, tidy

    textpage = page.get_textpage()  # type: ignore[attr-defined]
    try:
        if textpage.count_chars() < MIN_TEXT_LAYER_CHARS:
            return ()
        height_pt = page.get_size()[1]  # type: ignore[attr-defined]
        rect_texts = _rect_texts(textpage)
        # Judged on PDFium's own rectangles: a layer set glyph by glyph shows as one glyph to a rectangle.
        texts = [text for text in (tidy(" ".join(raw.split())) for _, raw in rect_texts) if text]
        if sum(len(text) for text in texts) < MIN_TEXT_LAYER_CHARS or judge(texts) is not None:
            return ()
        runs = []
        for (left, bottom, right, top), raw in _glued(rect_texts):
            text = tidy(" ".join(raw.split()))
            if text:
                runs.append(TextRun(text, left * scale, (height_pt - top) * scale, right * scale,
                                    (height_pt - bottom) * scale))
        return tuple(runs)
    finally:
        textpage.close()


Rect = tuple[float, float, float, float]  # left, bottom, right, top in PDF points


def _rect_texts(textpage: Any) -> list[tuple[Rect, str]]:
    """PDFium's text rectangles, each with the characters of the text stream that fall in it, in stream order.

    Asking PDFium for the text inside each rectangle instead takes every glyph that touches it: joined Arabic
    glyphs overhang their neighbours', so each run gained pieces of the next ("\u062d\u0635 \u062d\u0635\u0627
    \u0635\u0627"). Characters with no area (spaces, line breaks PDFium generates) go with the run they follow.
    """
    from .engines.layout import SOFT_HYPHEN
    from .engines.text_layer import logical_ligatures

    rects: list[Rect] = [textpage.get_rect(i) for i in range(textpage.count_rects())]
    # PDFium's full-text call writes a soft hyphen at a line end as U+FFFE; its area call, and the layout, use 0x02.
    text = textpage.get_text_range().replace("\ufffe", SOFT_HYPHEN)
    count = textpage.count_chars()
    if not rects:
        return []
    if len(text) != count:  # characters outside the BMP: stream and character indices disagree
        return [(r, textpage.get_text_bounded(*r)) for r in rects]
    boxes = [textpage.get_charbox(i) for i in range(count)]
    text = logical_ligatures(text, lambda i: boxes[i] == boxes[i + 1])
    pieces: list[list[str]] = [[] for _ in rects]
    current = 0
    for ch, (left, bottom, right, top) in zip(text, boxes, strict=True):
        if right > left and top > bottom:
            x, y = (left + right) / 2, (bottom + top) / 2
            # The current rectangle, then the next ones: PDFium made them in stream order.
            order = chain(range(current, len(rects)), range(current))
            found = next((k for k in order if _holds(rects[k], x, y)), None)
            if found is None:
                continue  # a glyph outside every rectangle (clipped, off the page)
            current = found
        pieces[current].append(ch)
    return [(rect, "".join(chars)) for rect, chars in zip(rects, pieces, strict=True)]


def _glued(runs: list[tuple[Rect, str]]) -> list[tuple[Rect, str]]:
    """Runs the text stream writes with no space between them, set side by side on one line, made one run.

    PDFium starts a rectangle at every font change, so a word set in two fonts (a small-caps heading's
    full-size initial, an italic or bold part, a footnote mark) came out as two runs, and the layout
    joined them with a space ("S YSTEM M ODEL"). The stream itself says whether a space stood there."""
    glued: list[tuple[Rect, str]] = []
    for rect, text in runs:
        if glued and text and glued[-1][1] and not text[0].isspace() and not glued[-1][1][-1].isspace():
            (left, bottom, right, top), before = glued[-1]
            height = min(top - bottom, rect[3] - rect[1])
            gap = max(rect[0] - right, left - rect[2])  # either way: right-to-left runs follow to the left
            overlap = min(top, rect[3]) - max(bottom, rect[1])
            if height > 0 and gap < 0.3 * height and overlap > 0.5 * height:
                glued[-1] = ((min(left, rect[0]), min(bottom, rect[1]), max(right, rect[2]), max(top, rect[3])),
                             before + text)
                continue
        glued.append((rect, text))
    return glued


def _holds(rect: Rect, x: float, y: float) -> bool:
    left, bottom, right, top = rect
    return left - 0.5 <= x <= right + 0.5 and bottom - 0.5 <= y <= top + 0.5
