"""The benchmark harnesses, run end to end at smoke size (the numbers themselves are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_service_harness_runs_batched_and_one_at_a_time(tmp_path):
    result = bench(
        "bench.serve_bench", "--engine", "tiny", "--new-tokens", "4", "--concurrency", "1,3",
        "--min-requests", "3", "--max-batch-size", "4", "--warmup-requests", "2", "--machine", "smoke", "--out-dir", str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "serve-smoke-tiny.json").read_text())
    batched, baseline = report["configurations"]["batched"], report["configurations"]["baseline"]
    assert (batched["max_batch_size"], baseline["max_batch_size"]) == (4, 1)
    for configuration in (batched, baseline):
        assert [level["concurrency"] for level in configuration["levels"]] == [1, 3]
        for level in configuration["levels"]:
            assert level["answered"] == level["requests"] == 3 and level["failures"] == {}
            assert level["output_tokens_per_s"] > 0 and level["p50_s"] <= level["p95_s"] <= level["p99_s"]
            assert level["peak_rss_mb"] > 100
    # One at a time really is one at a time; the engine batched concurrent pages when it may.
    assert {level["max_batch_size_seen"] for level in baseline["levels"]} == {1}
    assert set(report["speedup_pages_per_s"]) == {"1", "3"}
    assert (tmp_path / "serve-smoke-tiny.png").stat().st_size > 10_000


def test_engine_harness_reports_static_batching_waste(tiny_checkpoint, tmp_path):
    out = tmp_path / "engine.json"
    result = bench(
        "bench.engine_bench", "--model", str(tiny_checkpoint), "--batch-sizes", "1,3", "--new-tokens", "5",
        "--mixed", "2:6", "--mixed-batch", "4", "--out", str(out),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["batch_size"], r["output_tokens"], r["errors"]) for r in report["records"]] == [(1, 5, []), (3, 15, [])]
    mixed = report["mixed_lengths"]
    assert mixed["useful_tokens"] < mixed["generated_tokens"] and 0 < mixed["static_batching_efficiency"] < 1
    assert out.with_suffix(".png").exists()
