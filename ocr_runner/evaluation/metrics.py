"""Scores: CER, WER, order-free word F1, TEDS for tables, token edit score for formulas.

Edit distances come from rapidfuzz (C++ Levenshtein); TEDS uses APTED over the table's
HTML tree, the PubTabNet recipe (Zhong et al., 2020).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from .normalize import latex_tokens, text_for_scoring, words


def cer(reference: str, prediction: str) -> float:
    """Character error rate of ``prediction`` against ``reference`` (both normalised first).

    Edits (insertions, deletions, substitutions) divided by the reference length; can exceed
    1 when the prediction is much longer. An empty reference scores 0 for an empty prediction, else 1.
    """
    ref, hyp = text_for_scoring(reference), text_for_scoring(prediction)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


def wer(reference: str, prediction: str) -> float:
    """Word error rate: word-level edit distance over the reference's word count."""
    ref, hyp = words(reference), words(prediction)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


@dataclass(frozen=True)
class BagScore:
    precision: float
    recall: float
    f1: float


def bag_of_words(reference: str, prediction: str) -> BagScore:
    """Order-free word precision, recall and F1 (multiset overlap): reading order does not count."""
    ref, hyp = Counter(words(reference)), Counter(words(prediction))
    if not ref and not hyp:
        return BagScore(1.0, 1.0, 1.0)
    common = sum((ref & hyp).values())
    precision = common / max(sum(hyp.values()), 1)
    recall = common / max(sum(ref.values()), 1)
    f1 = 0.0 if common == 0 else 2 * precision * recall / (precision + recall)
    return BagScore(precision, recall, f1)


def formula_score(reference: str, prediction: str) -> float:
    """1 - normalised token edit distance between the two formulas after LaTeX normalisation."""
    ref, hyp = latex_tokens(reference), latex_tokens(prediction)
    if not ref and not hyp:
        return 1.0
    return 1.0 - Levenshtein.distance(ref, hyp) / max(len(ref), len(hyp))


# --- TEDS ------------------------------------------------------------------------------


class _Node:
    """A table-tree node as APTED sees it: tag, spans and (for cells) the cell's characters."""

    def __init__(self, tag: str, colspan: int = 1, rowspan: int = 1, content: str = "") -> None:
        self.tag = tag
        self.colspan = colspan
        self.rowspan = rowspan
        self.content = content
        self.children: list[_Node] = []

    def size(self) -> int:
        return 1 + sum(child.size() for child in self.children)


def _table_tree(table_html: str, structure_only: bool) -> _Node | None:
    import lxml.html

    try:
        root = lxml.html.fromstring(f"<html><body>{table_html}</body></html>")
    except Exception:  # noqa: BLE001 - unparsable prediction: no table
        return None
    tables = root.xpath("//table")
    if not tables:
        return None

    def build(element) -> _Node:  # type: ignore[no-untyped-def]
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if tag in ("td", "th"):
            content = "" if structure_only else text_for_scoring(element.text_content())
            return _Node("td", int(element.get("colspan", 1) or 1), int(element.get("rowspan", 1) or 1), content)
        node = _Node(tag)
        for child in element:
            if isinstance(child.tag, str) and child.tag.lower() in ("thead", "tbody", "tfoot", "tr", "td", "th"):
                node.children.append(build(child))
        return node

    return build(tables[0])


def teds(reference_html: str, prediction_html: str, *, structure_only: bool = False) -> float:
    """Tree-edit-distance similarity of two HTML tables, 1.0 for identical, 0.0 with no table predicted.

    Rename costs 1 between different tags or spans; between two cells it is the normalised
    edit distance of their texts (0 with ``structure_only``). ``thead``/``tbody`` are kept,
    as in PubTabNet's TEDS.
    """
    from apted import APTED, Config

    reference = _table_tree(reference_html, structure_only)
    prediction = _table_tree(prediction_html, structure_only)
    if reference is None:
        return 1.0 if prediction is None else 0.0
    if prediction is None:
        return 0.0

    class _Costs(Config):
        def rename(self, a: _Node, b: _Node) -> float:  # type: ignore[override]
            if a.tag != b.tag or a.colspan != b.colspan or a.rowspan != b.rowspan:
                return 1.0
            if a.tag == "td" and (a.content or b.content):
                return Levenshtein.normalized_distance(a.content, b.content)
            return 0.0

        def children(self, node: _Node) -> list[_Node]:  # type: ignore[override]
            return node.children

    distance = APTED(reference, prediction, _Costs()).compute_edit_distance()
    return 1.0 - distance / max(reference.size(), prediction.size())


def table_html(text: str) -> str:
    """The first table in an engine's output as HTML: an HTML table as is, a markdown pipe table converted."""
    import re

    match = re.search(r"<table\b.*?</table>", text, flags=re.IGNORECASE | re.DOTALL)
    if match:
        return match.group(0)
    rows: list[list[str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and stripped.count("|") >= 2:
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
                continue
            rows.append(cells)
        elif rows:
            break
    if not rows:
        return ""
    import html as _html

    body = "".join("<tr>" + "".join(f"<td>{_html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{body}</table>"
