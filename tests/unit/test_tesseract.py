"""The Tesseract binding's pure parts: the scan resolution it is given."""

from __future__ import annotations

import pytest

from ocr_runner.engines.tesseract import DEFAULT_DPI, resolution

pytestmark = pytest.mark.unit


def test_the_scan_resolution_comes_from_the_file_or_is_taken_as_300_dpi() -> None:
    assert resolution({"dpi": (285, 285)}) == 285
    assert resolution({"dpi": (72.0, 72.0)}) == 72
    assert resolution({}) == resolution({"dpi": (1, 1)}) == resolution({"dpi": "x"}) == DEFAULT_DPI == 300
