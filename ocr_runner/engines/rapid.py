"""Embedded CPU engine: RapidOCR (PP-OCR ONNX models shipped inside its wheel, no download)."""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import OCRError
from ..grounding import grounding_text, to_grid
from ..images import load_image
from ..settings import Settings
from ..tasks import Task
from .base import Engine, EngineHealth, EnginePage, EngineResult
from .layout import Block, Bounds, Line, to_markdown, to_text
from .rapid_pages import longest, read_page
from .rapid_readers import Reader, ReaderPool, bounds
from .tesseract import Tesseract, resolution
from .torch_env import cuda_available, gpu_name

log = logging.getLogger(__name__)

MODEL_ID = "rapidocr/PP-OCRv6"
_NOTES = {
    Task.MARKDOWN: "CPU engine: layout approximated (regions from a small layout model, reading order from line "
    "positions; tables as plain grids without spans, no formulas)",
    Task.FIGURE: "CPU engine: returns the text found in the figure, it cannot interpret charts",
    Task.DESCRIBE: "CPU engine: returns the text found in the image, it cannot describe pictures",
}

TEXT_LAYER_NOTE = "CPU engine: text taken from the PDF's text layer (send force_ocr=true to recognise the page image)"


class RapidOcrEngine(Engine):
    """Text detection + recognition on CPU; a real answer on a machine with no GPU and no weights."""

    name = "rapidocr"
    model = MODEL_ID

    def __init__(self, settings: Settings, reason: str = "") -> None:
        self.settings = settings
        self.reason = reason
        self._readers = ReaderPool(settings)
        # One more thread than readers: a page's image is decoded while every reader is busy.
        self._pool = ThreadPoolExecutor(self._readers.size + 1, thread_name_prefix="rapidocr")
        self._tesseract = Tesseract()

    def run_batch(self, pages: list[EnginePage]) -> list[EngineResult]:
        # The pages of a batch (and of concurrent calls) are read side by side, one per reader.
        return list(self._pool.map(lambda page: self._run_safely(page, len(pages)), pages))

    def _run_safely(self, page: EnginePage, batch_size: int) -> EngineResult:
        try:
            return self._run_one(page, batch_size=batch_size)
        except OCRError as exc:
            return self.failed(exc.message, exc.code)
        except Exception as exc:  # noqa: BLE001 - one item's failure must not fail its batch
            log.exception("RapidOCR failed on one item")
            return self.failed(f"recognition failed: {exc.__class__.__name__}: {exc}")

    def health(self) -> EngineHealth:
        return EngineHealth(
            engine=self.name,
            model=self.model,
            model_loaded=True,
            device="cpu",
            cuda_available=cuda_available(),
            gpu_name=gpu_name(),
            batching="none",  # no batches: pages are read side by side, one per single-threaded reader
            reason=self.reason,
            degraded=self.degraded,
        )

    def warmup(self) -> None:
        # Readers warm side by side, a core each; raises if the models cannot run.
        list(self._pool.map(lambda reader: reader.warmup(), self._readers.readers))

    def _run_one(self, page: EnginePage, batch_size: int) -> EngineResult:
        import numpy as np

        image = load_image(page.image, max_pixels=self.settings.max_image_pixels)
        started = time.perf_counter()
        pixels = np.asarray(image)
        with self._readers.reader() as reader:
            if page.task is Task.LOCATE:
                output = reader.read(pixels, turn_lines=True, word_boxes=True)
                text = self._locate(output, page.locate_text or "", image.width, image.height)
            else:
                text, source = self._page_text(reader, page, pixels, resolution(image.info))
        elapsed_ms = (time.perf_counter() - started) * 1000
        return EngineResult(
            text=text,
            engine=self.name,
            model=self.model,
            batch_size=batch_size,
            inference_ms=elapsed_ms,
            note=TEXT_LAYER_NOTE if page.text_layer and page.task is not Task.LOCATE else _NOTES.get(page.task),
            source=None if page.task is Task.LOCATE else source,
        )

    def _page_text(self, reader: Reader, page: EnginePage, pixels: Any, dpi: int) -> tuple[str, str]:
        """The page's text (markdown for the markdown task) and which path read it."""
        if page.text_layer:  # a PDF page's own text, judged sound when the page was loaded
            lines, source = [Line(text, x1, y1, x2, y2) for text, x1, y1, x2, y2 in page.text_layer], "text_layer"
        else:
            original = pixels
            reading = read_page(reader, pixels)
            other = None
            if reading.unread:  # Tesseract turns the page itself (a guess made on unread text is no guide)
                other = self._other_script(original, dpi, reading.detected)
            if other is None:
                lines, source, pixels = _lines(reading.finish()), "ocr", reading.pixels
            else:
                (lines, source), pixels = other, original
        if not lines:
            return "", source
        if page.task is Task.MARKDOWN:
            return to_markdown(lines, self._regions(reader, pixels), pixels.shape[1], pixels.shape[0]), source
        return to_text(lines, pixels.shape[1]), source

    def _other_script(self, original: Any, dpi: int, detected: list[Bounds]) -> tuple[list[Line], str] | None:
        """A page the recogniser barely read: if Tesseract's script detection names a script RapidOCR has no
        model for and Tesseract has one, Tesseract reads the page (as it came, at its resolution)."""
        if not self._tesseract.available():
            return None
        from PIL import Image

        image = Image.fromarray(original)
        script = self._tesseract.script(image, longest(detected))
        model = self._tesseract.model_for(script.name)
        if model is None:
            return None
        return self._tesseract.lines(image, model, dpi, detected, script.upright), f"tesseract:{model}"

    def _regions(self, reader: Reader, pixels: Any) -> list[Block]:
        """Layout regions (title, text, table, figure, ...) from the reader's layout model."""
        if not self.settings.rapidocr_layout:
            return []
        found = reader.layout(pixels)
        if found.boxes is None:
            return []
        ranked = sorted(zip(found.scores, found.boxes, found.class_names), key=lambda r: -float(r[0]))
        regions: list[Block] = []
        for _, b, kind in ranked:  # of two regions over the same place, the more confident one stays
            block = Block(str(kind), float(b[0]), float(b[1]), float(b[2]), float(b[3]))
            if all(_iou(block, kept) < 0.6 for kept in regions):
                regions.append(block)
        return regions

    @staticmethod
    def _locate(output: Any, query: str, width: int, height: int) -> str:
        """Grounding markup for every run of words (or line) that matches ``query``."""
        target = _normalise(query)
        if not target or output.boxes is None:
            return ""
        target_words = target.split()
        grid_boxes: list[list[int]] = []
        for line_text, line_box, words in zip(output.txts, output.boxes, output.word_results or []):
            word_list = [w for w in (words or ()) if w and w[0]]
            norm = [_normalise(w[0]) for w in word_list]
            found = False
            for start in range(len(norm) - len(target_words) + 1):
                window = norm[start : start + len(target_words)]
                if " ".join(window) == target or (len(target_words) == 1 and target in window[0]):
                    points = [p for w in word_list[start : start + len(target_words)] for p in w[2]]
                    grid_boxes.append(to_grid(*bounds(points), width, height))
                    found = True
            if not found and target in _normalise(line_text):
                grid_boxes.append(to_grid(*bounds(line_box), width, height))
        return grounding_text(query.strip(), grid_boxes) if grid_boxes else ""


def _lines(output: Any) -> list[Line]:
    if output.boxes is None or not output.txts:
        return []
    lines = []
    for box, text, score in zip(output.boxes, output.txts, output.scores):
        if text and text.strip():
            x1, y1, x2, y2 = bounds(box)
            lines.append(Line(text.strip(), x1, y1, x2, y2, float(score)))
    return lines


def _iou(a: Block, b: Block) -> float:
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.casefold())).strip()

