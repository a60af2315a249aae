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


def test_service_harness_runs_every_configuration(tmp_path):
    result = bench(
        "bench.serve_bench", "--engine", "tiny", "--mixed-tokens", "2:6", "--concurrency", "1,3",
        "--min-requests", "3", "--max-batch-size", "4", "--warmup-requests", "2", "--baseline-max-requests", "2",
        "--machine", "smoke", "--out-dir", str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "serve-smoke-tiny.json").read_text())
    configurations = report["configurations"]
    assert {name: (c["max_batch_size"], c["batching"]) for name, c in configurations.items()} == {
        "continuous": (4, "continuous"), "static": (4, "static"), "baseline": (1, "static"),
    }
    for name, configuration in configurations.items():
        assert [level["concurrency"] for level in configuration["levels"]] == [1, 3]
        for level in configuration["levels"]:
            expected = 2 if name == "baseline" else 3  # --baseline-max-requests caps one-at-a-time's levels
            assert level["answered"] == level["requests"] == expected and level["failures"] == {}
            assert level["output_tokens_per_s"] > 0 and level["p50_s"] <= level["p95_s"] <= level["p99_s"]
            assert level["peak_rss_mb"] > 100
    # One at a time really is one at a time.
    assert {level["max_batch_size_seen"] for level in configurations["baseline"]["levels"]} == {1}
    assert {name: set(levels) for name, levels in report["speedup_pages_per_s"].items()} == {
        "continuous": {"1", "3"}, "static": {"1", "3"}
    }
    assert (tmp_path / "serve-smoke-tiny.png").stat().st_size > 10_000


def test_service_harness_interleaves_configurations_on_a_shared_machine(tmp_path):
    result = bench(
        "bench.serve_bench", "--engine", "tiny", "--mixed-tokens", "2:6", "--concurrency", "1,2",
        "--min-requests", "4", "--max-batch-size", "4", "--warmup-requests", "1", "--interleave", "2",
        "--configurations", "continuous,baseline", "--machine", "smoke-interleaved", "--out-dir", str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "serve-smoke-interleaved-tiny.json").read_text())
    assert report["interleaved_rounds"] == 2
    for configuration in report["configurations"].values():
        for level in configuration["levels"]:
            assert level["rounds"] == 2 and level["answered"] == level["requests"] == 4 and level["failures"] == {}
            assert not any(key.startswith("_") for key in level)
    assert set(report["speedup_pages_per_s"]["continuous"]) == {"1", "2"}


def test_engine_harness_reports_static_batching_waste(tiny_checkpoint, tmp_path):
    out = tmp_path / "engine.json"
    result = bench(
        "bench.engine_bench", "--model", str(tiny_checkpoint), "--batch-sizes", "1,3", "--new-tokens", "5",
        "--mixed", "2:6", "--mixed-batch", "2", "--mixed-pages", "6", "--modes", "--mode-batch", "2", "--kv-rooms", "0,4", "--out", str(out),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["batching"], r["kv_room"], r["batch_size"], r["output_tokens"], r["errors"]) for r in report["records"]] == [
        ("continuous", 0, 1, 5, []), ("continuous", 4, 1, 5, []), ("static", 0, 1, 5, []),
        ("continuous", 0, 3, 15, []), ("continuous", 4, 3, 15, []), ("static", 0, 3, 15, []),
    ]
    mixed = report["mixed_lengths"]
    assert mixed["pages"] == 6 and mixed["useful_tokens"] < mixed["generated_tokens"]
    assert 0 < mixed["static_batching_efficiency"] < 1
    assert mixed["static"]["pages_per_s"] > 0 and mixed["continuous"]["pages_per_s"] > 0
    assert out.with_suffix(".png").exists()
    # Every mode the tiny OCR-2 supports, each with its own image-token count.
    modes = report["modes"]
    assert [m["mode"] for m in modes] == ["1024/768 crop", "768/768", "1024/1024"]
    assert all(m["errors"] == [] and m["pages_per_s"] > 0 for m in modes)
    assert len({m["prompt_tokens"] for m in modes}) == 3


def test_pdf_harness_sweeps_pages_per_request(tmp_path):
    out = tmp_path / "pdf.json"
    result = bench(
        "bench.pdf_throughput", "--engine", "tiny", "--pages", "1,3", "--repeats", "1", "--new-tokens", "3",
        "--max-batch-size", "4", "--out", str(out),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["engine"] == "deepseek" and report["batching"] == "continuous"
    assert [(r["pages"], r["max_engine_batch"] <= 4) for r in report["records"]] == [(1, True), (3, True)]
    assert all(r["pages_per_s_median"] > 0 for r in report["records"])
