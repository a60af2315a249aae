"""The load bench's per-process memory reading: each worker found under its service name."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# A fresh parent with exactly one child, named as BentoML names its engine worker: read from inside
# the test process, the suite's own servers (children of pytest) would be read too.
READ = """
import json, os, subprocess, sys
from bench.load import process_rss_mb, tree_rss_mb
child = subprocess.Popen([sys.executable, "-c", "import sys; print(flush=True); sys.stdin.read()",
                          "--service-name", "ocr-engine"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
child.stdout.readline()  # started
try:
    print(json.dumps({"report": process_rss_mb(os.getpid()), "total": tree_rss_mb(os.getpid())}))
finally:
    child.communicate(b"")
"""


def test_memory_is_read_per_service_process():
    result = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    reading = json.loads(result.stdout.strip().splitlines()[-1])
    report, total = reading["report"], reading["total"]
    assert set(report) == {"serve", "ocr-engine"}
    assert report["ocr-engine"]["rss"] > 1 and report["serve"]["rss"] > report["ocr-engine"]["anon"] > 0
    assert total == pytest.approx(report["serve"]["rss"] + report["ocr-engine"]["rss"], abs=2)
