"""Embedded CPU engine: RapidOCR (PP-OCR ONNX models shipped inside its wheel, no download)."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from ..errors import OCRError
from ..grounding import grounding_text, to_grid
from ..images import load_image
from ..settings import Settings
from ..tasks import Task
from .base import Engine, EngineHealth, EngineJob, EngineResult
from .torch_env import cuda_available, gpu_name

log = logging.getLogger(__name__)

MODEL_ID = "rapidocr/PP-OCRv6"
_NOTES = {
    Task.MARKDOWN: "CPU engine: layout approximated from text line positions (no tables, formulas or headings)",
    Task.FIGURE: "CPU engine: returns the text found in the figure, it cannot interpret charts",
    Task.DESCRIBE: "CPU engine: returns the text found in the image, it cannot describe pictures",
}


class RapidOcrEngine(Engine):
    """Text detection + recognition on CPU; a real answer on a machine with no GPU and no weights."""

    name = "rapidocr"
    model = MODEL_ID

    def __init__(self, settings: Settings, reason: str = "") -> None:
        from rapidocr import RapidOCR

        self.settings = settings
        self.reason = reason
        self._ocr = RapidOCR(
            params={"Global.log_level": "warning", "Det.limit_side_len": settings.rapidocr_limit_side_len}
        )
        self._lock = threading.Lock()

    def run_batch(self, jobs: list[EngineJob]) -> list[EngineResult]:
        results = []
        for job in jobs:
            try:
                results.append(self._run_one(job, batch_size=len(jobs)))
            except OCRError as exc:
                results.append(self.failed(exc.message, exc.status))
            except Exception as exc:  # noqa: BLE001 - one item's failure must not fail its batch
                log.exception("RapidOCR failed on one item")
                results.append(self.failed(f"recognition failed: {exc.__class__.__name__}: {exc}"))
        return results

    def health(self) -> EngineHealth:
        return EngineHealth(
            engine=self.name,
            model=self.model,
            model_loaded=True,
            device="cpu",
            cuda_available=cuda_available(),
            gpu_name=gpu_name(),
            reason=self.reason,
        )

    def warmup(self) -> None:
        import numpy as np

        self._ocr(np.full((64, 64, 3), 255, dtype=np.uint8))  # raises if the ONNX models cannot run

    def _run_one(self, job: EngineJob, batch_size: int) -> EngineResult:
        import numpy as np

        image = load_image(job.image, max_pixels=self.settings.max_image_pixels)
        started = time.perf_counter()
        with self._lock:
            output = self._ocr(np.asarray(image), return_word_box=job.task is Task.LOCATE)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if job.task is Task.LOCATE:
            text = self._locate(output, job.locate_text or "", image.width, image.height)
        elif output.boxes is None or not output.txts:
            text = ""
        else:
            text = output.to_markdown().strip()
        return EngineResult(
            text=text,
            engine=self.name,
            model=self.model,
            batch_size=batch_size,
            inference_ms=elapsed_ms,
            note=_NOTES.get(job.task),
        )

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
                    grid_boxes.append(to_grid(*_bounds(points), width, height))
                    found = True
            if not found and target in _normalise(line_text):
                grid_boxes.append(to_grid(*_bounds(line_box), width, height))
        return grounding_text(query.strip(), grid_boxes) if grid_boxes else ""


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.casefold())).strip()


def _bounds(points: Any) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return min(xs), min(ys), max(xs), max(ys)
