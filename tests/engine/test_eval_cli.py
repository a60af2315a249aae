"""The evaluation command end to end on a small MANIFEST folder of rendered pages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocr_runner.evaluation.__main__ import main
from ocr_runner.evaluation.manifest import load_manifest
from tests.helpers import ROOT, encode, render_page

pytestmark = pytest.mark.engine

SHARED_EVAL = ROOT.parent / "shared" / "eval"
HEADER = "file\tground_truth_file\tsource_repo\tsource_path\tcommit\tlicense\tkind\tnotes\tderived_gt_file\n"


def _write_set(folder: Path) -> None:
    pages = {"page1": ["Invoice number 4711", "Total due 42.50 EUR"], "page2": ["Hello world", "Second line"]}
    rows = []
    for name, lines in pages.items():
        (folder / f"{name}.png").write_bytes(encode(render_page(lines, size=(700, 220))))
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
        rows.append(f"{name}.png\t{name}.txt\t-\t-\t-\t-\tprinted-clean\trendered test page\t\n")
    (folder / "formula.tex").write_text(r"a + b")
    (folder / "formula.png").write_bytes(encode(render_page(["a + b"], size=(300, 90))))
    rows.append("formula.png\tformula.tex\t-\t-\t-\t-\tformula(isolated)\t-\t\n")
    (folder / "MANIFEST.tsv").write_text(HEADER + "".join(rows))


def test_eval_command_scores_a_manifest_folder(tmp_path: Path) -> None:
    data, out = tmp_path / "set", tmp_path / "out"
    data.mkdir()
    _write_set(data)
    engines = "rapidocr,tesseract" if shutil.which("tesseract") else "rapidocr"
    assert main(["--data", str(data), "--engines", engines, "--out", str(out), "--name", "r"]) == 0
    report = json.loads((out / "r.json").read_text())
    assert {d["document"] for d in report["documents"]} == {"page1.png", "page2.png", "formula.png"}
    for engine in engines.split(","):
        assert report["summary"][engine]["printed_mean_cer"] < 0.1, report["documents"]
    assert "| mean CER, printed pages |" in (out / "r.md").read_text()
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Same inputs, same numbers.
    first = (out / "r.json").read_text()
    assert main(["--data", str(data), "--engines", "rapidocr", "--out", str(out), "--name", "again"]) == 0
    again = json.loads((out / "again.json").read_text())
    assert [d for d in json.loads(first)["documents"] if d["engine"] == "rapidocr"] == again["documents"]


@pytest.mark.skipif(not (SHARED_EVAL / "MANIFEST.tsv").exists(), reason="../shared/eval is not beside this checkout")
def test_shared_eval_manifest_resolves() -> None:
    documents = load_manifest(SHARED_EVAL)
    assert documents
    for document in documents:
        assert document.file.exists(), document.file
        assert document.ground_truth.exists(), document.ground_truth
        assert document.reference().strip()
    assert {"printed", "table", "formula", "receipt"} <= {d.category for d in documents}
