"""Score runner outputs against ground truth and write the report: JSON, markdown, PNG chart.

Numbers are rounded to four decimals and documents keep manifest order, so the same
inputs give byte-identical JSON and markdown. Timings are kept out of both (they vary).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean

from . import metrics, olmocr
from .manifest import EvalDocument
from .normalize import marks_as_in
from .split import HALVES

# The bar of issue #4 is measured on these categories (the MANIFEST's kind tags "printed…").
PRINTED = ("printed",)
# Whole pages scored as text (issue #16's bar: printed and scanned pages, born-digital ones included).
PAGES = ("printed", "scanned", "digital", "slides")
PAGE_SEPARATOR = "<--- Page Split --->"
RTL_TAG = "rtl"  # right-to-left scripts (Arabic, Persian): reported apart as well, see the headline


@dataclass
class Score:
    document: str
    category: str
    scoring: str
    engine: str
    rtl: bool = False
    cer: float | None = None
    wer: float | None = None
    bag_f1: float | None = None
    teds: float | None = None
    teds_structure: float | None = None
    formula: float | None = None
    olmocr: float | None = None  # share of the olmOCR-bench tests passed
    olmocr_passed: int | None = None
    olmocr_total: int | None = None
    error: str | None = None
    half: str = ""  # "tune" or "check" (see split.py)


def score(document: EvalDocument, engine: str, prediction: str | None, error: str | None = None,
          half: str = "") -> Score:
    """Every metric that applies to this document's kind; a failed read scores as an empty prediction."""
    text = prediction or ""
    result = Score(document.name, document.category, document.scoring, engine, RTL_TAG in document.kind, error=error,
                   half=half)
    if document.scoring == "olmocr":
        outcome = olmocr.run_tests(olmocr.load_tests(document.ground_truth), text.split(PAGE_SEPARATOR))
        result.olmocr, result.olmocr_passed, result.olmocr_total = outcome.rate, outcome.passed, len(outcome.scored)
        return _rounded(result)
    reference = document.reference()
    text = marks_as_in(reference, text)
    if document.scoring == "form":  # reading order of a form is ambiguous: its words as a bag
        result.bag_f1 = metrics.bag_of_words(reference, text).f1
        return _rounded(result)
    if document.scoring == "formula":
        result.formula = metrics.formula_score(reference, text)
        return _rounded(result)
    result.cer = metrics.cer(reference, text)
    result.wer = metrics.wer(reference, text)
    if document.order_free or document.scoring == "table":
        result.bag_f1 = metrics.bag_of_words(reference, text).f1
    if document.scoring == "table":
        predicted = metrics.table_html(text)
        result.teds = metrics.teds(reference, predicted)
        result.teds_structure = metrics.teds(reference, predicted, structure_only=True)
    return _rounded(result)


def _rounded(s: Score) -> Score:
    for key, value in asdict(s).items():
        if isinstance(value, float):
            setattr(s, key, round(value, 4))
    return s


METRICS = ("cer", "wer", "bag_f1", "teds", "teds_structure", "formula", "olmocr")
LOWER_IS_BETTER = {"cer", "wer"}


@dataclass
class Report:
    data: str
    engines: dict[str, str]  # name -> description
    scores: list[Score] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> Report:
        """A report read back from its JSON (to redraw the chart or the markdown without reading again)."""
        payload = json.loads(text)
        return cls(payload["data"], payload["engines"], [Score(**d) for d in payload["documents"]])

    def engine_names(self) -> list[str]:
        return list(self.engines)

    def categories(self) -> list[str]:
        return list(dict.fromkeys(s.category for s in self.scores))

    def _chosen(self, engine: str, categories: tuple[str, ...] | None, rtl: bool | None, half: str | None,
                scoring: str | None = None) -> list[Score]:
        return [s for s in self.scores
                if s.engine == engine and (categories is None or s.category in categories)
                and (rtl is None or s.rtl == rtl) and (half is None or s.half == half)
                and (scoring is None or s.scoring == scoring)]

    def mean(self, engine: str, metric: str, categories: tuple[str, ...] | None = None,
             rtl: bool | None = None, half: str | None = None, scoring: str | None = None) -> float | None:
        values = [getattr(s, metric) for s in self._chosen(engine, categories, rtl, half, scoring)
                  if getattr(s, metric) is not None]
        return round(mean(values), 4) if values else None

    def olmocr_tests(self, engine: str, half: str | None = None) -> tuple[int, int]:
        """olmOCR-bench tests passed and scored, over every document that has them."""
        chosen = [s for s in self._chosen(engine, None, None, half) if s.olmocr_total]
        return sum(s.olmocr_passed or 0 for s in chosen), sum(s.olmocr_total or 0 for s in chosen)

    def count(self, category: str, half: str | None = None) -> int:
        return len({s.document for s in self.scores if s.category == category and (half is None or s.half == half)})

    def halves(self) -> list[str]:
        present = {s.half for s in self.scores if s.half}
        return [h for h in HALVES if h in present]

    def summary(self) -> dict:
        return {
            engine: {
                "printed_mean_cer": self.mean(engine, "cer", PRINTED),
                "printed_mean_wer": self.mean(engine, "wer", PRINTED),
                "printed_ltr_mean_cer": self.mean(engine, "cer", PRINTED, rtl=False),
                "printed_rtl_mean_cer": self.mean(engine, "cer", PRINTED, rtl=True),
                "all_text_mean_cer": self.mean(engine, "cer"),
                "halves": {
                    half: {
                        "pages_mean_cer": self.mean(engine, "cer", PAGES, half=half, scoring="text"),
                        "pages_ltr_mean_cer": self.mean(engine, "cer", PAGES, rtl=False, half=half, scoring="text"),
                        "olmocr_tests": list(self.olmocr_tests(engine, half)),
                        "categories": {
                            cat: {m: self.mean(engine, m, (cat,), half=half) for m in METRICS
                                  if self.mean(engine, m, (cat,), half=half) is not None}
                            for cat in self.categories() if self.count(cat, half)
                        },
                    }
                    for half in self.halves()
                },
                "categories": {
                    cat: {m: self.mean(engine, m, (cat,)) for m in METRICS if self.mean(engine, m, (cat,)) is not None}
                    for cat in self.categories()
                },
            }
            for engine in self.engine_names()
        }

    def to_json(self) -> str:
        payload = {"data": self.data, "engines": self.engines, "summary": self.summary(),
                   "documents": [asdict(s) for s in self.scores]}
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"

    def to_markdown(self) -> str:
        names = self.engine_names()
        fmt = _fmt
        lines = [f"# OCR accuracy: `{self.data}`", ""]
        lines += [f"- **{name}**: {desc}" for name, desc in self.engines.items()]
        lines += ["", "CER and WER after markup stripping, NFKC and whitespace normalisation (lower is better);",
                  "TEDS, formula score (1 - normalised LaTeX token edit distance) and order-free word F1: "
                  "higher is better.",
                  "", "## Headline", "", "| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines.append(_row("mean CER, printed pages", *(fmt(self.mean(n, "cer", PRINTED)) for n in names)))
        lines.append(_row("mean WER, printed pages", *(fmt(self.mean(n, "wer", PRINTED)) for n in names)))
        lines.append("| mean CER, printed pages in left-to-right scripts | "
                     + " | ".join(fmt(self.mean(n, "cer", PRINTED, rtl=False)) for n in names) + " |")
        lines.append("| mean CER, printed pages in right-to-left scripts (Arabic, Persian) | "
                     + " | ".join(fmt(self.mean(n, "cer", PRINTED, rtl=True)) for n in names) + " |")
        lines.append("| mean CER, every text-scored document | "
                     + " | ".join(fmt(self.mean(n, "cer")) for n in names) + " |")
        counts = (len({s.document for s in self.scores if s.category in PRINTED}),
                  len({s.document for s in self.scores if s.category in PRINTED and s.rtl}))
        lines += ["", f"Printed pages: {counts[0]} documents ({counts[1]} right-to-left)."]
        lines += self._halves_markdown(names)
        lines += ["", "## Per category", "", "| category | documents | metric | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for cat in self.categories():
            for metric in METRICS:
                values = [self.mean(n, metric, (cat,)) for n in names]
                if any(v is not None for v in values):
                    lines.append(_row(cat, str(self.count(cat)), metric, *(fmt(v) for v in values)))
        lines += ["", "## Per document", "", "| document | half | category | metric | " + " | ".join(names) + " |",
                  "|---|---|---|---|" + "---|" * len(names)]
        by_key = {(s.document, s.engine): s for s in self.scores}
        for doc in dict.fromkeys(s.document for s in self.scores):
            first = by_key[(doc, names[0])]
            for metric in METRICS:
                values = [getattr(by_key[(doc, n)], metric) for n in names]
                if any(v is not None for v in values):
                    lines.append(_row(doc, first.half, first.category, metric, *(fmt(v) for v in values)))
        errors = [s for s in self.scores if s.error]
        if errors:
            lines += ["", "## Failed reads (scored as empty output)", ""]
            lines += [f"- {s.engine} on {s.document}: {s.error}" for s in errors]
        return "\n".join(lines) + "\n"

    def _halves_markdown(self, names: list[str]) -> list[str]:
        """The tune half and the check half apart: whole pages (printed, scanned, digital, slides), then each
        category."""
        if not self.halves():
            return []
        lines = ["", "## Tune and check halves", "",
                 "Pages split by `ocr_runner/evaluation/split.py` (per category, by the SHA-256 of the file name); "
                 "rules are tuned on the tune half, the check half only measures them.", "",
                 "| half | category | documents | metric | " + " | ".join(names) + " |",
                 "|---|---|---|---|" + "---|" * len(names)]
        for half in self.halves():
            pages = len({s.document for s in self.scores if s.half == half and s.category in PAGES
                         and s.scoring == "text"})
            lines.append(_row(half, "pages (printed, scanned, digital, slides)", str(pages), "cer",
                              *(_fmt(self.mean(n, "cer", PAGES, half=half, scoring="text")) for n in names)))
            lines.append(_row(half, "pages, left-to-right scripts", "", "cer",
                              *(_fmt(self.mean(n, "cer", PAGES, rtl=False, half=half, scoring="text"))
                                for n in names)))
            tests = [self.olmocr_tests(n, half) for n in names]
            if any(total for _, total in tests):
                lines.append(_row(half, "olmOCR-bench tests", "", "passed",
                                  *(f"{p}/{t}" for p, t in tests)))
            for cat in self.categories():
                if not self.count(cat, half):
                    continue
                for metric in METRICS:
                    values = [self.mean(n, metric, (cat,), half=half) for n in names]
                    if any(v is not None for v in values):
                        lines.append(_row(half, cat, str(self.count(cat, half)), metric, *(_fmt(v) for v in values)))
        return lines

    def chart(self, path: Path) -> None:
        """Two panels: mean CER per category (lower is better); table/formula/receipt scores (higher)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = self.engine_names()
        cer_cats = [c for c in self.categories() if any(self.mean(n, "cer", (c,)) is not None for n in names)]
        cer_groups = ["printed, left-to-right", "printed, right-to-left"] + [c for c in cer_cats if c not in PRINTED]
        other = [(label, metric, cat) for label, metric, cat in (
            ("table TEDS", "teds", "table"), ("table TEDS-struct", "teds_structure", "table"),
            ("formula", "formula", "formula"), ("receipt word F1", "bag_f1", "receipt"))
            if cat in self.categories()]
        ratios = [max(len(cer_groups), 1), max(len(other), 1)]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": ratios})
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            values = [self.mean(name, "cer", PRINTED, rtl=False), self.mean(name, "cer", PRINTED, rtl=True)]
            values += [self.mean(name, "cer", (c,)) for c in cer_cats if c not in PRINTED]
            xs = [j + i * width for j in range(len(cer_groups))]
            axes[0].bar(xs, [min(v or 0.0, 1.5) for v in values], width, label=name)
            scores = [self.mean(name, metric, (cat,)) or 0.0 for _, metric, cat in other]
            axes[1].bar([j + i * width for j in range(len(other))], scores, width, label=name)
        centre = width * (len(names) - 1) / 2
        axes[0].set_xticks([j + centre for j in range(len(cer_groups))], cer_groups, rotation=20)
        axes[0].set_ylabel("mean CER (lower is better, capped at 1.5)")
        axes[0].legend()
        axes[1].set_xticks([j + centre for j in range(len(other))], [o[0] for o in other], rotation=20)
        axes[1].set_ylabel("score (higher is better)")
        axes[1].set_ylim(0, 1)
        fig.suptitle(f"OCR accuracy on {self.data}")
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
