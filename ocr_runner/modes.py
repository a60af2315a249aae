"""Resolution modes: validate what the client asked for and snap it to what a model can do.

Clients speak in the DeepSeek-OCR (v1) vocabulary: ``base_size`` (global view),
``image_size`` (tile size) and ``crop_mode`` (tiling on). Every size is in the full
model's pixels; a model built at another scale (the tiny test checkpoint) is mapped
through its own scale factor, so the same request works on both.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnprocessableRequest

# Every global/tile size any DeepSeek-OCR model uses: v1 Tiny/Small/Base/Large, OCR-2 tiles.
KNOWN_SIZES: tuple[int, ...] = (512, 640, 768, 1024, 1280)


@dataclass(frozen=True)
class ResolutionMode:
    base_size: int
    image_size: int
    crop_mode: bool


def validate_mode(base_size: int, image_size: int, crop_mode: bool) -> ResolutionMode:
    """Reject sizes no DeepSeek-OCR mode uses (422); everything else is snapped later."""
    for field, value in (("base_size", base_size), ("image_size", image_size)):
        if value not in KNOWN_SIZES:
            raise UnprocessableRequest(
                f"{field}={value} is not a resolution any DeepSeek-OCR mode uses; choose one of {list(KNOWN_SIZES)}",
                field=field,
            )
    return ResolutionMode(base_size, image_size, bool(crop_mode))


def snap_mode(requested: ResolutionMode, supported: tuple[ResolutionMode, ...]) -> ResolutionMode:
    """The supported mode nearest to ``requested``: same crop setting first, then closest sizes."""
    same_crop = [m for m in supported if m.crop_mode == requested.crop_mode] or list(supported)
    return min(
        same_crop,
        key=lambda m: (
            abs(m.base_size - requested.base_size) + abs(m.image_size - requested.image_size),
            -m.base_size,
        ),
    )
