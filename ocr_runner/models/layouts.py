"""Which DeepSeek-OCR checkpoint layout a config.json describes, told apart before anything loads.

Three layouts load:

- ``V1``: ``deepseek-ai/DeepSeek-OCR`` as published (``ocr_runner.models.deepseek_v1``).
- ``OCR2_ORIGINAL``: ``deepseek-ai/DeepSeek-OCR-2`` as published (``ocr_runner.models.deepseek_ocr2``).
- ``OCR2_CONVERTED``: transformers' own layout (``deepseek-community/DeepSeek-OCR-2``).

Both published configs say ``model_type: deepseek_vl_v2`` and carry a ``language_config`` (so do
DeepSeek-VL2's own checkpoints, which are not OCR models): a detector keyed on either alone takes
OCR-2 for v1. They differ in ``architectures``, ``vision_config.model_name`` and the towers under
``vision_config.width``; every signal present must agree, else the checkpoint is refused.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

PUBLISHED_MODEL_TYPE = "deepseek_vl_v2"
CONVERTED_MODEL_TYPE = "deepseek_ocr2"

# Signals of each published layout: (architectures, vision_config.model_name, a tower under vision_config.width).
_V1_SIGNALS = ("DeepseekOCRForCausalLM", "deeplip_b_l", "clip-l-14-224")
_OCR2_SIGNALS = ("DeepseekOCR2ForCausalLM", "deepencoderv2", "qwen2-0-5b")


class Layout(str, Enum):
    V1 = "DeepSeek-OCR (v1), as published"
    OCR2_ORIGINAL = "DeepSeek-OCR-2, as published"
    OCR2_CONVERTED = "DeepSeek-OCR-2, transformers' layout"


class UnsupportedCheckpoint(ValueError):
    """The checkpoint is none of the layouts this service loads; the message names it and what was found."""


def detect_layout(config: dict[str, Any] | None, name: str) -> Layout:
    """The layout of checkpoint ``name`` from its config.json (``None``: there was none to read)."""
    if config is None:
        raise UnsupportedCheckpoint(
            f"{name}: no config.json to read (not a local folder with one, not in the hub cache, "
            "and the hub could not be asked)"
        )
    model_type = config.get("model_type")
    if model_type == CONVERTED_MODEL_TYPE:
        return Layout.OCR2_CONVERTED
    if model_type == PUBLISHED_MODEL_TYPE or "language_config" in config:
        found = _published_signals(config)
        v1 = found & set(_V1_SIGNALS)
        ocr2 = found & set(_OCR2_SIGNALS)
        if v1 and not ocr2:
            return Layout.V1
        if ocr2 and not v1:
            return Layout.OCR2_ORIGINAL
        verdict = "contradicts itself" if v1 and ocr2 else "matches neither DeepSeek-OCR nor DeepSeek-OCR-2"
        raise UnsupportedCheckpoint(f"{name}: config.json ({_summary(config)}) {verdict}")
    raise UnsupportedCheckpoint(
        f"{name}: config.json ({_summary(config)}) is not a DeepSeek-OCR checkpoint; expected model_type "
        f"{CONVERTED_MODEL_TYPE!r} (transformers' DeepSeek-OCR-2) or {PUBLISHED_MODEL_TYPE!r} with "
        "DeepSeek-OCR's or DeepSeek-OCR-2's vision towers (the published checkpoints)"
    )


def _published_signals(config: dict[str, Any]) -> set[str]:
    vision = config.get("vision_config") or {}
    towers = vision.get("width") if isinstance(vision.get("width"), dict) else {}
    return {*(config.get("architectures") or ()), str(vision.get("model_name")), *towers}


def _summary(config: dict[str, Any]) -> str:
    vision = config.get("vision_config") or {}
    towers = sorted(vision["width"]) if isinstance(vision.get("width"), dict) else None
    parts = {
        "model_type": config.get("model_type"),
        "architectures": config.get("architectures"),
        "vision_config.model_name": vision.get("model_name"),
        "vision towers": towers,
    }
    return ", ".join(f"{key} {value!r}" for key, value in parts.items() if value is not None) or "empty"
