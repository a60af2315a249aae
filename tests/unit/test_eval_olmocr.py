"""olmOCR-bench tests, FUNSD forms, the tune/check split and Tesseract's languages, on hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr_runner.evaluation import olmocr
from ocr_runner.evaluation.manifest import EvalDocument, load_manifest
from ocr_runner.evaluation.report import Report, score
from ocr_runner.evaluation.runners import TesseractRunner
from ocr_runner.evaluation.split import CHECK, TUNE, split

pytestmark = pytest.mark.unit

PAGE = "# Results\n\nThe quick brown fox jumps over the lazy dog.\n\nSecond paragraph, later on.\n"


def _test(**fields) -> dict:
    return {"pdf": "x.pdf", "page": 1, "id": "t", "max_diffs": 0, **fields}


def test_present_and_absent_follow_olmocr_thresholds() -> None:
    assert olmocr.run_test(_test(type="present", text="quick brown fox"), PAGE)[0] is True
    assert olmocr.run_test(_test(type="present", text="quick brown cat"), PAGE)[0] is False
    assert olmocr.run_test(_test(type="present", text="quick brown cat", max_diffs=3), PAGE)[0] is True
    assert olmocr.run_test(_test(type="present", text="QUICK BROWN", case_sensitive=False), PAGE)[0] is True
    assert olmocr.run_test(_test(type="present", text="QUICK BROWN"), PAGE)[0] is False
    assert olmocr.run_test(_test(type="absent", text="Page 7 of 9"), PAGE)[0] is True
    assert olmocr.run_test(_test(type="absent", text="lazy dog"), PAGE)[0] is False
    # Markdown emphasis and typographic dashes do not count against the output.
    assert olmocr.run_test(_test(type="present", text="a - b"), "**a** \u2013 b")[0] is True
    # An empty output contains nothing, and so passes absent tests.
    assert olmocr.run_test(_test(type="present", text="a b"), "\n")[0] is False
    assert olmocr.run_test(_test(type="absent", text="a b"), "\n")[0] is True


def test_order_needs_before_to_start_first() -> None:
    assert olmocr.run_test(_test(type="order", before="quick brown", after="Second paragraph"), PAGE)[0] is True
    assert olmocr.run_test(_test(type="order", before="Second paragraph", after="quick brown"), PAGE)[0] is False
    assert olmocr.run_test(_test(type="order", before="quick brawn", after="Second", max_diffs=1), PAGE)[0] is True
    assert olmocr.run_test(_test(type="order", before="missing text", after="Second"), PAGE)[0] is False


def test_table_cells_and_their_neighbours() -> None:
    html = ("<table><tr><th>Year</th><th>Sales</th></tr><tr><td>2020</td><td>12</td></tr>"
            "<tr><td>2021</td><td>15</td></tr></table>")
    assert olmocr.run_test(_test(type="table", cell="15", up="12", left="2021", top_heading="Sales"), html)[0]
    assert not olmocr.run_test(_test(type="table", cell="15", up="2020"), html)[0]
    markdown = "| Year | Sales |\n|---|---|\n| 2020 | 12 |\n"
    assert olmocr.run_test(_test(type="table", cell="12", left="2020", top_heading="Sales"), markdown)[0]
    assert not olmocr.run_test(_test(type="table", cell="12"), "Year Sales 2020 12")[0]  # no table at all
    spans = "<table><tr><td colspan='2'>Head</td></tr><tr><td>a</td><td>b</td></tr></table>"
    assert olmocr.run_test(_test(type="table", cell="b", up="Head"), spans)[0]


def _manifest(folder: Path, rows: list[tuple[str, str, str]]) -> list[EvalDocument]:
    header = "file\tground_truth_file\tsource_repo\tsource_path\tcommit\tlicense\tkind\tnotes\tderived_gt_file\n"
    lines = [f"{file}\t{truth}\t-\t-\t-\t-\t{kind}\t-\t\n" for file, truth, kind in rows]
    (folder / "MANIFEST.tsv").write_text(header + "".join(lines))
    return load_manifest(folder)


def test_tests_jsonl_rows_are_scored_as_olmocr_tests_per_page(tmp_path: Path) -> None:
    tests = [_test(type="present", text="quick brown fox", id="a"), _test(type="absent", text="lazy dog", id="b"),
             _test(type="present", text="second page words", page=2, id="c"),
             _test(type="math", math="x^2", id="d")]
    (tmp_path / "doc.tests.jsonl").write_text("\n".join(json.dumps(t) for t in tests) + "\n")
    (doc,) = _manifest(tmp_path, [("doc.pdf", "doc.tests.jsonl", "digital-pdf")])
    assert doc.scoring == "olmocr"
    result = score(doc, "e", PAGE + "\n\n<--- Page Split --->\n\nsecond page words")
    assert (result.olmocr_passed, result.olmocr_total) == (2, 3)  # math is not scored without a renderer
    assert result.cer is None


def test_funsd_forms_are_scored_by_order_free_word_f1(tmp_path: Path) -> None:
    form = {"form": [{"text": "Date:", "words": [{"text": "Date:", "box": [0, 0, 1, 1]}]},
                     {"text": "12/03/98", "words": [{"text": "12/03/98", "box": [2, 0, 3, 1]}]}]}
    (tmp_path / "f.json").write_text(json.dumps(form))
    (doc,) = _manifest(tmp_path, [("f.png", "f.json", "form;scanned")])
    assert doc.scoring == "form"
    assert score(doc, "e", "12/03/98 Date:").bag_f1 == 1.0  # any order
    assert score(doc, "e", "Date:").bag_f1 == pytest.approx(2 / 3, abs=1e-4)
    assert score(doc, "e", "12/03/98 Date:").cer is None


def test_split_is_per_category_deterministic_and_by_name_only(tmp_path: Path) -> None:
    rows = [(f"p{i}.png", f"p{i}.txt", "printed") for i in range(7)]
    rows += [(f"s{i}.png", f"s{i}.txt", "scanned;newspaper") for i in range(4)]
    documents = _manifest(tmp_path, rows)
    halves = split(documents)
    printed = [halves[f"p{i}.png"] for i in range(7)]
    scanned = [halves[f"s{i}.png"] for i in range(4)]
    assert printed.count(TUNE) == 4 and printed.count(CHECK) == 3
    assert scanned.count(TUNE) == 2 and scanned.count(CHECK) == 2
    assert split(list(reversed(documents))) == halves  # manifest order does not matter


def test_report_gives_the_halves_apart(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text("hello world")
    documents = _manifest(tmp_path, [("a.png", "a.txt", "printed"), ("b.png", "b.txt", "printed")])
    halves = split(documents)
    report = Report("set", {"e": "engine"})
    for document, text in zip(documents, ("hello world", "hello")):
        report.scores.append(score(document, "e", text, half=halves[document.name]))
    tune, check = (report.summary()["e"]["halves"][h]["pages_mean_cer"] for h in (TUNE, CHECK))
    assert {tune, check} == {0.0, round(6 / 11, 4)}
    assert "## Tune and check halves" in report.to_markdown()


def test_tesseract_runner_uses_every_language_a_row_names(tmp_path: Path) -> None:
    runner = object.__new__(TesseractRunner)
    runner.installed_languages = {"eng", "deu", "frk", "kan", "heb"}  # type: ignore[misc]
    (tmp_path / "t.txt").write_text("x")
    kan, nzz, heb, missing = _manifest(tmp_path, [
        ("k.png", "t.txt", "scanned;non-english(kn);mixed-script(en)"),
        ("n.png", "t.txt", "scanned;newspaper;blackletter;non-english(de)"),
        ("h.png", "t.txt", "printed;non-english(he);rtl"),
        ("c.png", "t.txt", "printed;non-english(zh)"),
    ])
    assert runner.languages(kan) == "kan+eng"
    assert runner.languages(nzz) == "frk+eng"
    assert runner.languages(heb) == "heb+eng"
    with pytest.raises(RuntimeError, match="tesseract-ocr-chi-sim"):
        runner.languages(missing)
