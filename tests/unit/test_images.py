import base64
import struct
import zlib

import pytest
from PIL import Image

from ocr_runner.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ocr_runner.http.errors import status_of
from ocr_runner.images import decode_base64, load_image
from tests.helpers import encode

pytestmark = pytest.mark.unit
LIMIT = 10_000_000


def png_with_header_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (valid CRC), with one tiny data chunk."""
    data = bytearray(encode(Image.new("RGB", (1, 1))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def test_base64_variants_decode_to_the_same_bytes():
    raw = encode(Image.new("RGB", (3, 3), "red"))
    std = base64.b64encode(raw).decode()
    assert decode_base64(std) == raw
    assert decode_base64("data:image/png;base64," + std) == raw
    assert decode_base64(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    assert decode_base64(std[:40] + "\n" + std[40:]) == raw


@pytest.mark.parametrize("text", ["", "   ", "not base64 at all!", "QUJD$$"])
def test_bad_base64_names_the_field(text):
    with pytest.raises(InvalidInput) as info:
        decode_base64(text)
    assert info.value.field == "image_base64" and status_of(info.value) == 400


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF"])
def test_formats_load_as_rgb(fmt):
    image = load_image(encode(Image.new("RGB", (40, 20), (200, 10, 10)), fmt), max_pixels=LIMIT)
    assert image.mode == "RGB" and image.size == (40, 20)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "I;16", "1"])
def test_modes_convert_to_rgb(mode):
    source = Image.new("RGB", (8, 8), (0, 0, 0)).convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    assert load_image(encode(source, fmt), max_pixels=LIMIT).mode == "RGB"


def test_transparent_pixels_become_white():
    image = load_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0))), max_pixels=LIMIT)
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_grey_keeps_its_brightness():
    image = load_image(encode(Image.new("I;16", (4, 4), 65535)), max_pixels=LIMIT)
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    source = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image = load_image(encode(source, "JPEG", exif=exif), max_pixels=LIMIT)
    assert image.size == (20, 60)


def test_empty_truncated_and_garbage_are_400():
    good = encode(Image.new("RGB", (64, 64), "blue"), "JPEG")
    for data in (b"", good[: len(good) // 2], b"hello world", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20):
        with pytest.raises(InvalidInput):
            load_image(data, max_pixels=LIMIT, field="file")


def test_zero_size_image_is_400():
    with pytest.raises(InvalidInput):
        load_image(png_with_header_size(0, 10), max_pixels=LIMIT)


def test_decompression_bomb_is_413_before_decoding():
    with pytest.raises(PayloadTooLarge) as info:
        load_image(png_with_header_size(100_000, 100_000), max_pixels=LIMIT)
    assert "pixels" in info.value.message


def test_pdf_is_named_as_unsupported_here():
    with pytest.raises(UnsupportedMediaType):
        load_image(b"%PDF-1.7\n...", max_pixels=LIMIT)
