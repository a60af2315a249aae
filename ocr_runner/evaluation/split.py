"""The evaluation set split into a tune half and a check half, by a rule that looks at nothing but names.

Rule: documents are grouped by category (the first ``kind`` tag, see ``EvalDocument.category``);
inside a group they are ranked by the SHA-256 of their manifest name, and ranks alternate
tune, check, tune, ... So each category is split in two (an odd one gives tune the extra page),
nobody picks which page lands where, and the same folder always splits the same way.

Rules and thresholds are tuned on the tune half only; the check half is read to measure them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from .manifest import EvalDocument

TUNE = "tune"
CHECK = "check"
HALVES = (TUNE, CHECK)


def _key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def split(documents: list[EvalDocument]) -> dict[str, str]:
    """Manifest name -> ``"tune"`` or ``"check"`` for every document."""
    groups: dict[str, list[str]] = defaultdict(list)
    for document in documents:
        groups[document.category].append(document.name)
    halves: dict[str, str] = {}
    for names in groups.values():
        for rank, name in enumerate(sorted(names, key=_key)):
            halves[name] = TUNE if rank % 2 == 0 else CHECK
    return halves
