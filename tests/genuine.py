"""The genuine small files of the official checkpoints, read where the project keeps them (never copied).

``../shared/checkpoints/`` beside the repository holds config.json, processor_config.json,
tokenizer_config.json and special_tokens_map.json of ``deepseek-ai/DeepSeek-OCR`` and
``deepseek-ai/DeepSeek-OCR-2`` byte for byte, and a stand-in tokenizer.json (its README says
what was checked). Tests that need them skip, saying so, where that folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GENUINE = (Path(__file__).resolve().parents[1] / ".." / "shared" / "checkpoints").resolve()
V1, OCR2, TOKENIZER = "deepseek-ocr", "deepseek-ocr-2", "tokenizer-reconstructed"


def genuine(*parts: str) -> Path:
    path = GENUINE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"the genuine checkpoint files are not here ({path} is absent)")
    return path


def genuine_config(model: str) -> dict:
    return json.loads(genuine(model, "config.json").read_text(encoding="utf-8"))


def published_folder(model: str, into: Path, *, tokenizer: bool = True) -> Path:
    """A folder laid out like the published checkpoint's small files: links to the genuine ones
    (and the stand-in tokenizer.json), for loaders that read a folder."""
    into.mkdir(parents=True, exist_ok=True)
    for source in genuine(model).iterdir():
        (into / source.name).symlink_to(source)
    if tokenizer:
        (into / "tokenizer.json").symlink_to(genuine(TOKENIZER, "tokenizer.json"))
    return into
