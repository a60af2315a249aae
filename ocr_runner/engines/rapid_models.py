"""How a CPU reader runs RapidOCR's models with OpenVINO: recognition widths rounded to few shapes, the
recogniser split into its body and two output heads, the detector's input prepared in float32 and the detector
compiled afresh after a bounded number of page sizes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

THREADS = 1  # each model of a reader runs on one thread (readers run side by side, a core each)

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
    (features to each frame's likeliest character and its probability) over all 18,710 characters or the
    alphabetic ones (``head`` picks; see ``ALPHABETIC``). RapidOCR's session stays for its interface (the
    character list).

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
        # Inputs are handed to OpenVINO as they are (its input conversion costs 0.1 ms a call, two calls a line).
        self._body = body.create_infer_request()
        self._heads = {name: head.create_infer_request() for name, head in heads.items()}

    def __call__(self, batch: Any) -> Any:
        """(batch, frames, 2): each frame's likeliest class (an index into the head's classes) and its
        probability, as float32: [..., 0] the probability, [..., 1] the index."""
        import numpy as np
        import openvino as ov

        width = batch.shape[3]
        padded = -(-width // REC_STEP) * REC_STEP
        if padded != width:
            batch = np.pad(batch, ((0, 0), (0, 0), (0, 0), (0, padded - width)))
        self._body.set_input_tensor(ov.Tensor(np.ascontiguousarray(batch, dtype=np.float32), shared_memory=True))
        self._body.infer()
        head = self._heads[self.head]
        features = self._body.get_output_tensor().data[:, : -(-width // REC_STRIDE)]
        head.set_input_tensor(ov.Tensor(np.ascontiguousarray(features), shared_memory=True))
        head.infer()
        return head.get_output_tensor().data

    def warmup(self, widths: Iterable[int]) -> None:
        """Run the body and both heads once at each input width (the body once for both)."""
        import numpy as np
        import openvino as ov

        for width in widths:
            self._body.infer([np.zeros((1, 3, REC_HEIGHT, width), dtype=np.float32)])
            features = np.ascontiguousarray(self._body.get_output_tensor().data)
            for head in self._heads.values():
                head.set_input_tensor(ov.Tensor(features, shared_memory=True))
                head.infer()

    def __getattr__(self, name: str) -> Any:  # the character list and the rest of RapidOCR's session interface
        return getattr(self.session, name)


def _split(model: Any, heads: dict[Head, Any]) -> tuple[Any, dict[Head, Any]]:
    """The recogniser compiled as its body and one output head per entry of ``heads``: its output layer
    (MatMul, Add) with the given rows (None: all), then each frame's likeliest class and that class's softmax
    probability, computed in the graph (no frames-by-classes array handed back to be searched again). One body
    serves both heads: OpenVINO holds some 7 MB a recognition width a model, and a head a fraction of that."""
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
        best = ops.topk(logits, ops.constant(np.int64(1)), axis=-1, mode="max", sort="none",
                        index_element_type="i32")
        # softmax of the best class: 1 / sum(exp(logit - best logit))
        total = ops.reduce_sum(ops.exp(ops.subtract(logits, best.output(0))), ops.constant(np.int64(-1)), True)
        both = ops.concat([ops.divide(ops.constant(np.float32(1.0)), total), ops.convert(best.output(1), "f32")], -1)
        compiled[name] = core.compile_model(ov.Model([both], [frames], name), "CPU", config)
    return body, compiled


class HeadDecoding:
    """RapidOCR's CTC decoding of a ``Recognition`` output (each frame's best class and its probability),
    whichever head produced it: the alphabetic head's class indices are mapped back to the full list first."""

    def __init__(self, decoding: Any, recognition: Recognition) -> None:
        self.decoding = decoding
        self.recognition = recognition

    def __call__(self, preds: Any, return_word_box: bool = False, **kwargs: Any) -> Any:
        import numpy as np

        prob, index = preds[..., 0], preds[..., 1].astype(np.int64)
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
