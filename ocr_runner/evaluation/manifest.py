"""An evaluation set: a folder with MANIFEST.tsv naming each document, its ground truth and kind.

Columns used: ``file``, ``ground_truth_file``, ``kind`` (``;``-separated tags, the first is
the category), ``derived_gt_file`` (preferred when present, e.g. a table's filled-in HTML).
How a document is scored follows from its ground truth: ``.html`` a table, ``.tex`` a formula,
``.tests.jsonl`` olmOCR-bench unit tests, a FUNSD-style ``.json`` form (``{"form": [{"words": ...}]}``)
order-free word F1, anything else text; receipts and forms also get order-free word scores.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "MANIFEST.tsv"
SCORING = ("text", "table", "formula", "olmocr", "form")
# Kind tags that name languages: non-english(de,fr), non-english-words(gsw,de), mixed-script(en).
_LANGUAGE_TAGS = re.compile(r"(?:non-english|non-english-words|mixed-script)\(([^)]*)\)")


@dataclass(frozen=True)
class EvalDocument:
    name: str  # the manifest's file column, e.g. ``tesseract/phototest.tif``
    file: Path
    ground_truth: Path
    kind: tuple[str, ...]
    notes: str = ""

    @property
    def category(self) -> str:
        """The first kind tag without qualifiers: ``printed-clean`` gives ``printed``, ``table(simple)`` ``table``."""
        first = self.kind[0] if self.kind else "other"
        return re.split(r"[-(]", first, maxsplit=1)[0].strip() or "other"

    @property
    def scoring(self) -> str:
        name = self.ground_truth.name.lower()
        if name.endswith(".tests.jsonl"):
            return "olmocr"
        suffix = self.ground_truth.suffix.lower()
        if suffix == ".json" and _is_form(self.ground_truth):
            return "form"
        return {".html": "table", ".htm": "table", ".tex": "formula"}.get(suffix, "text")

    @property
    def order_free(self) -> bool:
        """Receipts and forms: reading order is ambiguous, so words are also scored as a bag."""
        return any(tag.split("(")[0] in ("receipt", "form") for tag in self.kind)

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language code a kind tag names (``non-english(de,fr)``, ``non-english-words(gsw)``,
        ``mixed-script(en)``), in order, without repeats."""
        codes: list[str] = []
        for tag in self.kind:
            match = _LANGUAGE_TAGS.fullmatch(tag.strip())
            if match:
                codes.extend(code.strip() for code in match.group(1).split(",") if code.strip())
        return tuple(dict.fromkeys(codes))

    @property
    def blackletter(self) -> bool:
        return any(tag.strip() in ("blackletter", "fraktur") for tag in self.kind)

    def reference(self) -> str:
        """The ground truth as text: a form's words in file order, else the file as it is."""
        if self.scoring == "form":
            return form_text(self.ground_truth)
        return self.ground_truth.read_text(encoding="utf-8")


def load_manifest(folder: Path) -> list[EvalDocument]:
    """Every row of ``folder/MANIFEST.tsv``, in file order; paths resolved against ``folder``."""
    path = folder / MANIFEST
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    documents = []
    for row in rows:
        file = (row.get("file") or "").strip()
        if not file:
            continue
        truth = (row.get("derived_gt_file") or "").strip() or (row.get("ground_truth_file") or "").strip()
        kind = tuple(t.strip() for t in (row.get("kind") or "").split(";") if t.strip())
        documents.append(EvalDocument(file, folder / file, folder / truth, kind, (row.get("notes") or "").strip()))
    return documents


def _is_form(path: Path) -> bool:
    import json

    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return False
    return isinstance(payload, dict) and isinstance(payload.get("form"), list)


def form_text(path: Path) -> str:
    """A FUNSD-style form's words: each entity's words (or its text) one entity per line."""
    import json

    payload = json.loads(path.read_text(encoding="utf-8"))
    lines = []
    for entity in payload.get("form", []):
        words = [str(w.get("text", "")) for w in entity.get("words") or [] if str(w.get("text", "")).strip()]
        lines.append(" ".join(words) if words else str(entity.get("text", "")))
    return "\n".join(line for line in lines if line.strip())
