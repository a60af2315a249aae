"""An evaluation set: a folder with MANIFEST.tsv naming each document, its ground truth and kind.

Columns used: ``file``, ``ground_truth_file``, ``kind`` (``;``-separated tags, the first is
the category), ``derived_gt_file`` (preferred when present, e.g. a table's filled-in HTML).
How a document is scored follows from its ground truth: ``.html`` a table, ``.tex`` a formula,
anything else text; receipts and forms also get order-free word scores.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "MANIFEST.tsv"
SCORING = ("text", "table", "formula")


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
        suffix = self.ground_truth.suffix.lower()
        return {".html": "table", ".htm": "table", ".tex": "formula"}.get(suffix, "text")

    @property
    def order_free(self) -> bool:
        """Receipts and forms: reading order is ambiguous, so words are also scored as a bag."""
        return any(tag.split("(")[0] in ("receipt", "form") for tag in self.kind)

    @property
    def languages(self) -> tuple[str, ...]:
        """ISO 639-1 codes named in a ``non-english(de,fr)`` tag, in order."""
        for tag in self.kind:
            match = re.fullmatch(r"non-english\(([^)]*)\)", tag.strip())
            if match:
                return tuple(code.strip() for code in match.group(1).split(",") if code.strip())
        return ()

    def reference(self) -> str:
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
