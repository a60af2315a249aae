"""Image input: decode base64 or raw bytes into a validated RGB PIL image.

Everything a client can get wrong is reported as a typed error naming the field;
the pixel limit is checked from the header, before any pixel is decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInput, OCRError, PayloadTooLarge, UnprocessableRequest, UnsupportedMediaType

_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=-]+)*;base64,", re.IGNORECASE)
PDF_MAGIC = b"%PDF-"


def decode_base64(data: str, field: str = "image_base64") -> bytes:
    """Decode standard or URL-safe base64, with or without a ``data:`` URL prefix."""
    text = _DATA_URL.sub("", data.strip(), count=1)
    text = re.sub(r"\s+", "", text)
    if not text:
        raise InvalidInput(f"{field} is empty", field=field)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} is not valid base64", field=field) from None


ACCEPTED_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF")
MAX_ASPECT_RATIO = 64  # beyond this, the models' resize leaves the short side at 0 pixels


def load_image(data: bytes, *, max_pixels: int, field: str = "image") -> Image.Image:
    """Open, validate and normalise an image to RGB with EXIF orientation applied."""
    if not data:
        raise InvalidInput(f"{field} is empty", field=field)
    if data.startswith(PDF_MAGIC):
        raise UnsupportedMediaType(f"{field} is a PDF; this path reads images only", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidInput(f"{field} has zero width or height", field=field)
            if width * height > max_pixels:
                raise PayloadTooLarge(
                    f"{field} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}",
                    field=field,
                )
            if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                raise UnprocessableRequest(
                    f"{field} is {width}x{height}: more than {MAX_ASPECT_RATIO}:1 is too thin to read", field=field
                )
            image.load()
            return to_rgb(ImageOps.exif_transpose(image) or image)
    except OCRError:
        raise
    except UnidentifiedImageError:
        raise InvalidInput(
            f"{field} is not a supported image format ({', '.join(ACCEPTED_FORMATS)} or PDF)", field=field
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PayloadTooLarge(f"{field} has more pixels than the limit of {max_pixels}", field=field) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on client bytes is the client's 400
        raise InvalidInput(
            f"{field} could not be decoded ({exc.__class__.__name__}: truncated or corrupt)", field=field
        ) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for the models: alpha is flattened onto white, 16-bit and CMYK are converted."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # PIL's I->L conversion clips instead of scaling; scale 16-bit range down first.
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")

