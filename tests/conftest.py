from __future__ import annotations

from pathlib import Path

import pytest

from ocr_runner.settings import Settings, load_settings
from tests.tiny_checkpoint import build_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random DeepSeek-OCR-2 checkpoint, built once per session (never committed)."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-deepseek-ocr2"))


@pytest.fixture(scope="session")
def tiny_settings(tiny_checkpoint: Path) -> Settings:
    # A fixed output length makes batched and single runs comparable token by token.
    return load_settings(
        model_name=str(tiny_checkpoint), engine="deepseek", device="cpu", max_new_tokens=12, min_new_tokens=12
    )


@pytest.fixture(scope="session")
def tiny_v1_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random DeepSeek-OCR (v1) checkpoint in the original layout, built once per session."""
    from tests.tiny_v1_checkpoint import build_tiny_v1_checkpoint

    return build_tiny_v1_checkpoint(tmp_path_factory.mktemp("tiny-deepseek-ocr-v1"))


@pytest.fixture(scope="session")
def tiny_v1_settings(tiny_v1_checkpoint: Path) -> Settings:
    return load_settings(
        model_name=str(tiny_v1_checkpoint), engine="deepseek", device="cpu", max_new_tokens=6, min_new_tokens=6
    )
