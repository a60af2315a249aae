"""How the CPU engine runs its models: the detector's input, the recogniser's two output heads."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_runner.engines.rapid_models import ALL, ALPHABETIC, HeadDecoding, is_cjk

pytestmark = pytest.mark.unit


def test_cjk_characters_are_told_from_alphabetic_ones() -> None:
    assert all(is_cjk(c) for c in "中文字かなカナ한글，。、ｱ")
    assert not any(is_cjk(c) for c in "aZé—–ßΩЖ١٢3€→①")


def test_the_alphabetic_heads_classes_are_mapped_back_before_decoding() -> None:
    """RapidOCR's CTC decoding gets indices into the full character list, whichever head scored the frames."""
    from types import SimpleNamespace

    seen = {}

    def decode(index, prob, *args, **kwargs):
        seen["index"], seen["prob"] = index.tolist(), prob.tolist()
        return [("", 0.0)], [None]

    recognition = SimpleNamespace(head=ALPHABETIC, kept=np.array([0, 5, 9]))
    decoding = HeadDecoding(SimpleNamespace(decode=decode), recognition)
    frames = np.array([[[0.7, 2], [0.6, 0]]], dtype=np.float32)  # (probability, head class): head classes 0, 5, 9
    decoding(frames)
    assert seen["index"] == [[9, 0]] and np.allclose(seen["prob"], [[0.7, 0.6]])
    recognition.head = ALL
    decoding(frames)
    assert seen["index"] == [[2, 0]]


def test_detector_input_matches_rapidocr_preprocessing() -> None:
    from types import SimpleNamespace

    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    from ocr_runner.engines.rapid_models import DetectorInput

    detector = SimpleNamespace(limit_side_len=736, limit_type="min", mean=[0.485, 0.456, 0.406],
                               std=[0.229, 0.224, 0.225])
    image = np.random.default_rng(0).integers(0, 256, (500, 700, 3), dtype=np.uint8)
    theirs = DetPreProcess(detector.limit_side_len, detector.limit_type, detector.mean, detector.std)(image)
    ours = DetectorInput(detector)(image)
    assert ours.shape == theirs.shape == (1, 3, 736, 1024) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5 and ours.flags["C_CONTIGUOUS"]
