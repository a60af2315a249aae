"""The load bench's per-process memory reading: each worker found under its service name."""

import os
import subprocess
import sys

import pytest

from bench.load import process_rss_mb, tree_rss_mb

pytestmark = pytest.mark.unit


def test_memory_is_read_per_service_process():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "--service-name", "ocr-engine"],
                             stdin=subprocess.PIPE)
    try:
        report = process_rss_mb(os.getpid())
        total = tree_rss_mb(os.getpid())
    finally:
        child.communicate(b"")
    assert set(report) == {"serve", "ocr-engine"}
    assert report["ocr-engine"]["rss"] > 1 and report["serve"]["rss"] > report["ocr-engine"]["anon"] > 0
    assert total == pytest.approx(report["serve"]["rss"] + report["ocr-engine"]["rss"], abs=2)
