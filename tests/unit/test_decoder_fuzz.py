"""Malformed files against the image and PDF decoders: a 4xx-class error or a correct result, never a crash."""

import random

import pytest
from PIL import Image

from ocr_runner.documents import load_document
from ocr_runner.errors import OCRError
from ocr_runner.http.errors import status_of
from tests.helpers import encode, make_pdf, render_page

pytestmark = pytest.mark.unit
LIMIT = 20_000_000


def seeds() -> dict[str, bytes]:
    page = render_page(["Fuzz me"], size=(200, 120), font_size=20)
    files = {fmt: encode(page, fmt) for fmt in ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF")}
    files["PNG-RGBA"] = encode(page.convert("RGBA"))
    files["PNG-P"] = encode(page.convert("P"))
    files["TIFF-CMYK"] = encode(page.convert("CMYK"), "TIFF")
    files["PNG-16bit"] = encode(page.convert("I;16"))
    exif = Image.Exif()
    exif[0x0112] = 8
    files["JPEG-EXIF"] = encode(page, "JPEG", exif=exif)
    files["PDF"] = make_pdf([["Fuzz page"]])
    return files


def mutations(data: bytes, rng: random.Random, count: int):
    for _ in range(count):
        kind = rng.randrange(5)
        buffer = bytearray(data)
        if kind == 0:  # truncate
            yield bytes(buffer[: rng.randrange(len(buffer))])
        elif kind == 1:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                buffer[rng.randrange(len(buffer))] = rng.randrange(256)
            yield bytes(buffer)
        elif kind == 2:  # wrong magic
            yield bytes(rng.randrange(256) for _ in range(8)) + bytes(buffer[8:])
        elif kind == 3:  # header field overwrite with extreme values (sizes, offsets)
            position = rng.randrange(min(64, len(buffer) - 4))
            buffer[position : position + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
            yield bytes(buffer)
        else:  # splice two halves of the file
            cut = rng.randrange(1, len(buffer))
            yield bytes(buffer[cut:] + buffer[:cut])


@pytest.mark.parametrize("name", list(seeds()))
def test_mutated_files_never_crash_the_decoders(name):
    rng = random.Random(f"fuzz-{name}")
    original = seeds()[name]
    outcomes = {"ok": 0, "rejected": 0}
    for data in mutations(original, rng, 60):
        try:
            document = load_document(
                data, field="file", pages=None, max_pages=5, max_pixels=LIMIT, base_size=1024, crop_mode=True
            )
        except OCRError as exc:
            assert 400 <= status_of(exc) < 500, (name, exc)
            outcomes["rejected"] += 1
            continue
        for page in document.pages:
            assert page.width > 0 and page.height > 0 and page.image
        outcomes["ok"] += 1
    assert outcomes["rejected"] > 0  # the mutations do break files


@pytest.mark.parametrize("name", list(seeds()))
def test_every_seed_file_reads_correctly(name):
    document = load_document(seeds()[name], field="file", pages=None, max_pages=5, max_pixels=LIMIT, base_size=1024, crop_mode=True)
    size = (document.pages[0].width, document.pages[0].height)
    assert size == ((120, 200) if name == "JPEG-EXIF" else (200, 120)) or document.kind == "pdf"
