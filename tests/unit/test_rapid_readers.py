"""The CPU engine's recogniser input: widths rounded up so OpenVINO meets few shapes."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_runner.engines.rapid_readers import REC_STEP, REC_STRIDE, PaddedRecognition

pytestmark = pytest.mark.unit


class Session:
    """A stand-in recogniser: one output frame per REC_STRIDE input columns, as PP-OCR's has."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []
        self.characters = ["a", "b"]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.seen.append(batch.shape)
        self.last = batch
        return np.arange(batch.shape[3] // REC_STRIDE, dtype=np.float32).reshape(1, -1, 1)


def test_a_line_is_padded_to_the_next_step_and_its_padding_frames_are_cut() -> None:
    session = Session()
    padded = PaddedRecognition(session)
    line = np.ones((1, 3, 48, 100), dtype=np.float32)
    out = padded(line)
    assert session.seen == [(1, 3, 48, 128)] and 128 % REC_STEP == 0
    assert (session.last[..., :100] == 1).all() and (session.last[..., 100:] == 0).all()  # zeros, as RapidOCR pads
    assert out.shape == (1, 13, 1)  # the line's own 100 columns: 13 frames, not the padded input's 16
    assert padded(np.ones((1, 3, 48, 64), dtype=np.float32)).shape == (1, 8, 1) and session.seen[-1][3] == 64
    assert padded.characters == ["a", "b"]  # the rest of the session's interface passes through


def test_detector_input_matches_rapidocr_preprocessing() -> None:
    from types import SimpleNamespace

    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    from ocr_runner.engines.rapid_readers import DetectorInput

    detector = SimpleNamespace(limit_side_len=736, limit_type="min", mean=[0.485, 0.456, 0.406],
                               std=[0.229, 0.224, 0.225])
    image = np.random.default_rng(0).integers(0, 256, (500, 700, 3), dtype=np.uint8)
    theirs = DetPreProcess(detector.limit_side_len, detector.limit_type, detector.mean, detector.std)(image)
    ours = DetectorInput(detector)(image)
    assert ours.shape == theirs.shape == (1, 3, 736, 1024) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5 and ours.flags["C_CONTIGUOUS"]
