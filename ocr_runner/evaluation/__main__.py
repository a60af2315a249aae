"""``python -m ocr_runner.evaluation``: score engines on a MANIFEST folder and write the report."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .manifest import load_manifest
from .report import Report, score
from .runners import make_runner
from .split import split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocr_runner.evaluation", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/eval"), help="folder holding MANIFEST.tsv")
    parser.add_argument("--engines", default="rapidocr,rapidocr+pdftext,tesseract",
                        help="comma-separated: rapidocr, rapidocr+pdftext, deepseek, tesseract, service=URL")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for the report files")
    parser.add_argument("--name", default="eval", help="report file stem: NAME.md, NAME.json, NAME.png")
    parser.add_argument("--only", default="", help="comma-separated categories or document names to run (default all)")
    parser.add_argument("--half", choices=("tune", "check"), help="read only this half of the split (split.py)")
    parser.add_argument("--rescore", type=Path, metavar="REPORT.json",
                        help="read nothing: rewrite a saved report with today's halves and tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    documents = load_manifest(args.data)
    halves = split(documents)  # over the whole folder, so --only does not move a page to the other half
    if args.rescore:
        report = Report.from_json(args.rescore.read_text(encoding="utf-8"))
        for s in report.scores:
            s.half = halves.get(s.document, "")
        _write(report, args.out, args.name)
        return 0
    if args.half:
        documents = [d for d in documents if halves[d.name] == args.half]
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        documents = [d for d in documents if d.category in wanted or d.name in wanted]
    runners = [make_runner(spec) for spec in args.engines.split(",") if spec.strip()]
    report = Report(data=args.data.as_posix(), engines={})
    for runner in runners:
        report.engines[runner.name] = runner.describe()
        started = time.perf_counter()
        for document in documents:
            t0 = time.perf_counter()
            try:
                text, error = runner.read(document), None
            except Exception as exc:  # noqa: BLE001 - a failed read is reported and scored as empty
                text, error = "", f"{exc.__class__.__name__}: {exc}"
            result = score(document, runner.name, text, error, half=halves[document.name])
            shown = next((v for v in (result.cer, result.formula, result.olmocr, result.bag_f1) if v is not None), None)
            print(f"{runner.name:>18} {document.name:<40} {shown!s:>8} {time.perf_counter() - t0:6.1f}s",
                  file=sys.stderr)
            report.scores.append(result)
        print(f"{runner.name}: {len(documents)} documents in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    _write(report, args.out, args.name)
    return 0


def _write(report: Report, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(report.to_json(), encoding="utf-8")
    (out / f"{name}.md").write_text(report.to_markdown(), encoding="utf-8")
    report.chart(out / f"{name}.png")
    print(report.to_markdown().split("## Per category")[0])


if __name__ == "__main__":
    raise SystemExit(main())
