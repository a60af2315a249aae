"""The Tesseract binding's pure parts: the scan resolution it is given."""

from __future__ import annotations

import pytest

from ocr_runner.engines.layout import Line
from ocr_runner.engines.tesseract import DEFAULT_DPI, _covered, resolution

pytestmark = pytest.mark.unit


def test_the_scan_resolution_comes_from_the_file_or_is_taken_as_300_dpi() -> None:
    assert resolution({"dpi": (285, 285)}) == 285
    assert resolution({"dpi": (72.0, 72.0)}) == 72
    assert resolution({}) == resolution({"dpi": (1, 1)}) == resolution({"dpi": "x"}) == DEFAULT_DPI == 300


def test_a_detected_line_is_covered_by_the_lines_read_across_its_middle() -> None:
    left, right = Line("left column", 0, 100, 480, 130), Line("right column", 520, 102, 1000, 128)
    assert _covered((0, 100, 1000, 130), [left, right])  # one detected box across a gutter Tesseract saw
    assert _covered((0, 100, 1000, 130), [Line("most of it", 0, 100, 600, 130)])
    assert not _covered((0, 100, 1000, 130), [left])  # under half of it read
    assert not _covered((0, 100, 1000, 130), [Line("a word", 0, 100, 200, 130)])
    assert not _covered((0, 140, 1000, 170), [left, right])  # the next line down: nothing read there
