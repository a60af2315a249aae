"""olmOCR-bench unit tests (``*.tests.jsonl``): one JSON test per line, scored with olmOCR-bench's rules.

The rules, as olmOCR-bench (allenai/olmocr, ``olmocr/bench/tests.py``) states them, written here anew:

- text is normalised the same way for test and output: ``<br>`` to a space, markdown bold/italic
  markers and ``<b>``/``<i>`` dropped, whitespace runs to one space, NFC, typographic quotes and
  dashes to ASCII, micro sign to mu;
- ``present`` / ``absent``: the best partial (substring) similarity of the text in the output, against
  ``1 - max_diffs / len(text)``; ``case_sensitive`` (default true), ``first_n`` / ``last_n`` limit the
  output searched; an output shorter than the text cannot contain it;
- ``order``: some approximate occurrence (Levenshtein distance at most ``max_diffs``) of ``before``
  starts before some approximate occurrence of ``after``;
- ``table``: a cell of an HTML or markdown table in the output matches ``cell`` (similarity at least
  ``max(0.5, 1 - max_diffs / len)``) and each of its given neighbours (``up``, ``down``, ``left``,
  ``right``, ``top_heading``, ``left_heading``) matches the same way;
- ``baseline``: the output has letters or digits (or, with ``max_length``, at most that many).

``math`` needs a KaTeX renderer, which is not installed: math tests are counted as skipped, not failed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

SCORED = ("present", "absent", "order", "table", "baseline")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
                         "\uff3f": "_", "\u2013": "-", "\u2014": "-", "\u2011": "-", "\u2012": "-", "\u2212": "-",
                         "\u00b5": "\u03bc"})


def normalize(text: str) -> str:
    text = re.sub(r"<br/?>", " ", text or "")
    text = re.sub(r"(\*\*|__)(.*?)\1", r"\2", text)
    text = re.sub(r"</?[bi]>", "", text)
    text = re.sub(r"(\*|_)(.*?)\1", r"\2", text)
    text = re.sub(r"\s+", " ", text)
    return unicodedata.normalize("NFC", text).translate(_QUOTES)


@dataclass
class TestOutcome:
    id: str
    type: str
    passed: bool | None  # None: not scored here (math without a renderer, unknown types)
    why: str = ""


@dataclass
class OlmocrScore:
    outcomes: list[TestOutcome] = field(default_factory=list)

    @property
    def scored(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.passed is not None]

    @property
    def passed(self) -> int:
        return sum(1 for o in self.scored if o.passed)

    @property
    def rate(self) -> float | None:
        return self.passed / len(self.scored) if self.scored else None

    def by_type(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for o in self.scored:
            passed, total = out.get(o.type, (0, 0))
            out[o.type] = (passed + bool(o.passed), total + 1)
        return out


def load_tests(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_tests(tests: list[dict], pages: list[str]) -> OlmocrScore:
    """Each test against the markdown of its page (``page`` is 1-based; one page means the whole output)."""
    score = OlmocrScore()
    for test in tests:
        page = int(test.get("page", 1) or 1)
        content = pages[page - 1] if len(pages) > 1 and 0 < page <= len(pages) else "\n\n".join(pages)
        passed, why = run_test(test, content)
        score.outcomes.append(TestOutcome(str(test.get("id", "")), str(test.get("type", "")), passed, why))
    return score


def run_test(test: dict, content: str) -> tuple[bool | None, str]:
    kind = test.get("type")
    max_diffs = int(test.get("max_diffs", 0) or 0)
    if kind in ("present", "absent"):
        return _presence(test, content, max_diffs, kind == "present")
    if kind == "order":
        return _order(normalize(test["before"]), normalize(test["after"]), normalize(content), max_diffs)
    if kind == "table":
        return _table(test, content, max_diffs)
    if kind == "baseline":
        length = len("".join(c for c in content if c.isalnum()))
        if test.get("max_length") is not None:
            return length <= int(test["max_length"]), ""
        return length > 0, "" if length else "no letters or digits"
    return None, f"{kind} tests are not scored here"


def _presence(test: dict, content: str, max_diffs: int, present: bool) -> tuple[bool, str]:
    from rapidfuzz import fuzz

    query, text = normalize(test["text"]), normalize(content)
    if not test.get("case_sensitive", True):
        query, text = query.lower(), text.lower()
    first_n, last_n = test.get("first_n"), test.get("last_n")
    if first_n and last_n:
        text = text[:first_n] + text[-last_n:]
    elif first_n:
        text = text[:first_n]
    elif last_n:
        text = text[-last_n:]
    if len(text) < len(query) - max_diffs:
        return (not present), "output shorter than the text"
    threshold = 1.0 - max_diffs / max(len(query), 1)
    ratio = fuzz.partial_ratio(query, text) / 100.0
    found = ratio >= threshold
    return (found if present else not found), f"best match {ratio:.3f} against {threshold:.3f}"


def _order(before: str, after: str, text: str, max_diffs: int) -> tuple[bool, str]:
    from fuzzysearch import find_near_matches

    firsts = find_near_matches(before, text, max_l_dist=max_diffs)
    seconds = find_near_matches(after, text, max_l_dist=max_diffs)
    if not firsts or not seconds:
        return False, f"{'before' if not firsts else 'after'} text not found"
    ok = min(m.start for m in firsts) < max(m.start for m in seconds)
    return ok, "" if ok else "after text comes first"


def _similar(expected: str, cell: str, max_diffs: int) -> bool:
    from rapidfuzz import fuzz

    return fuzz.ratio(expected, normalize(cell)) / 100.0 >= max(0.5, 1.0 - max_diffs / max(len(expected), 1))


def _table(test: dict, content: str, max_diffs: int) -> tuple[bool, str]:
    grids = html_grids(content) + ([] if test.get("ignore_markdown_tables") else markdown_grids(content))
    if not grids:
        return False, "no table in the output"
    target = normalize(test["cell"])
    relations = {k: normalize(test[k]) for k in ("up", "down", "left", "right", "top_heading", "left_heading")
                 if test.get(k)}
    for grid in grids:
        for (r, c), text in grid.items():
            if not _similar(target, text, max_diffs):
                continue
            near = {
                "up": [grid.get((r - 1, c), "")], "down": [grid.get((r + 1, c), "")],
                "left": [grid.get((r, c - 1), "")], "right": [grid.get((r, c + 1), "")],
                "top_heading": [grid.get((0, c), "")], "left_heading": [grid.get((r, 0), "")],
            }
            if all(any(_similar(want, got, max_diffs) for got in near[k]) for k, want in relations.items()):
                return True, ""
    return False, "no cell with the expected neighbours"


def html_grids(content: str) -> list[dict[tuple[int, int], str]]:
    """Every HTML table as {(row, column): text}, spans filled into every slot they cover."""
    import lxml.html

    grids = []
    for match in re.finditer(r"<table\b.*?</table>", content, flags=re.IGNORECASE | re.DOTALL):
        try:
            root = lxml.html.fromstring(match.group(0))
        except Exception:  # noqa: BLE001 - an unparsable table is no table
            continue
        grid: dict[tuple[int, int], str] = {}
        for r, row in enumerate(root.xpath(".//tr")):
            c = 0
            for cell in row.xpath("./td|./th"):
                while (r, c) in grid:
                    c += 1
                text = " ".join(cell.text_content().split())
                for dr in range(max(int(cell.get("rowspan", 1) or 1), 1)):
                    for dc in range(max(int(cell.get("colspan", 1) or 1), 1)):
                        grid[(r + dr, c + dc)] = text
                c += max(int(cell.get("colspan", 1) or 1), 1)
        if grid:
            grids.append(grid)
    return grids


def markdown_grids(content: str) -> list[dict[tuple[int, int], str]]:
    grids: list[dict[tuple[int, int], str]] = []
    current: list[list[str]] = []
    for line in [*content.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith("|") and stripped.count("|") >= 2:
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
                current.append(cells)
            continue
        if current:
            grids.append({(r, c): text for r, row in enumerate(current) for c, text in enumerate(row)})
            current = []
    return grids
