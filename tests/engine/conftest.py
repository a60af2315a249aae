"""The page images the DeepSeek engine tests of both model families share."""

import pytest

from ocr_runner.engines import create_engine
from tests.helpers import encode, noise_image

# Sizes chosen for different tile counts on the tiny models: OCR-2 (tile 192 px) 0, 2, 3 and 6
# tiles; v1 (a 640 tile is 160 px) 0 tiles and 4x2, 1x3 and 3x2 grids.
SIZES = [(100, 80), (600, 300), (300, 900), (1200, 800)]


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [encode(noise_image(size, seed)) for seed, size in enumerate(SIZES)]


@pytest.fixture(scope="module")
def static_engine(tiny_settings):
    """The tiny OCR-2 through static batches (one ``generate``): the reference continuous batching must equal."""
    return create_engine(tiny_settings.model_copy(update={"batching": "static", "max_new_tokens": 24}))
