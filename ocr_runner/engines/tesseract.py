"""Tesseract (through tesserocr) for the scripts the bundled RapidOCR recogniser cannot read.

RapidOCR's PP-OCRv6 models read Chinese, Japanese and Latin-script languages. A page they
do not read (the detector finds text, the recogniser returns little or nothing) goes to
Tesseract's orientation-and-script detection (OSD); the detected script picks Tesseract's
script model (``Arabic``, ``Hebrew``, ``Kannada``, ``Hangul``, ``Thai``, ``Devanagari``...),
installed from Debian's ``tesseract-ocr-script-*`` packs. Nothing is taken from a setting.

tesserocr's wheel carries libtesseract but no language data: the data directory is the
first of Debian's (and the usual source builds') folders that holds ``osd.traineddata``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .layout import Bounds, Line

log = logging.getLogger(__name__)

TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata", "/usr/local/share/tessdata")
# Scripts RapidOCR reads itself: a page in one of these stays with it.
RAPID_SCRIPTS = {"Latin", "Han", "Japanese", "Common"}
# Script detection reads glyph shapes: scaled down, newspaper type loses them (a Fraktur page at 2000 px reads as
# Latin or Arabic, sure of neither; at its own 3300 px as Fraktur, sure). Only larger images are scaled, to this.
OSD_SIDE = 4000
# OSD script names to Tesseract's script models where the two names differ.
SCRIPT_MODELS = {"Korean": "Hangul", "Katakana": "Japanese", "Hiragana": "Japanese"}
# The principal language written in each script, read beside the script model where its pack is installed:
# Tesseract then keeps, word by word, the more confident of the two readings. The script model knows the
# glyphs of every language of its script; the language model knows one language's words. Together they read
# better than either (German Fraktur newspapers 0.069-0.151 CER against 0.126-0.198 for the script model
# alone; Kannada 0.024-0.027 against 0.028-0.032; Arabic unchanged).
SCRIPT_LANGUAGES = {"Fraktur": "frk", "Arabic": "ara", "Hebrew": "heb", "Devanagari": "hin", "Bengali": "ben",
                    "Tamil": "tam", "Telugu": "tel", "Kannada": "kan", "Malayalam": "mal", "Gujarati": "guj",
                    "Gurmukhi": "pan", "Thai": "tha", "Hangul": "kor", "Cyrillic": "rus", "Greek": "ell"}


# Tesseract sizes its layout analysis (column gaps, line spacing) in points, so it needs the scan's resolution:
# given none (a decoded image carries none), it assumes 70 dpi and merges a newspaper's columns (0.44 against
# 0.20 CER on a 285 dpi page). An image whose file states no resolution is taken as a 300 dpi scan.
DEFAULT_DPI = 300
MIN_DPI = 70  # a stated resolution under Tesseract's own floor is a placeholder (72 dpi screenshots pass)
LINE_PAD = 4  # pixels around a detector's line box read on its own


@dataclass(frozen=True)
class Script:
    """What Tesseract's orientation and script detection found."""

    name: str | None  # "Arabic", "Latin", ... (None: unsure)
    upright: bool  # the page is not turned


def resolution(info: dict[str, Any]) -> int:
    """The image's resolution from its file's metadata (PIL's ``info``), or ``DEFAULT_DPI``."""
    try:
        dpi = round(float(info["dpi"][1]))
    except (KeyError, TypeError, ValueError, IndexError):
        return DEFAULT_DPI
    return dpi if dpi >= MIN_DPI else DEFAULT_DPI


def tessdata_dir() -> str | None:
    for folder in TESSDATA_DIRS:
        if (Path(folder) / "osd.traineddata").exists():
            return folder
    return None


class Tesseract:
    """One Tesseract API per model, created on first use; calls are serialised (the API is not thread-safe)."""

    def __init__(self) -> None:
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()

    @cached_property
    def path(self) -> str | None:
        return tessdata_dir()

    @cached_property
    def models(self) -> set[str]:
        if self.path is None:
            return set()
        return {p.name.removesuffix(".traineddata") for p in Path(self.path).glob("*.traineddata")}

    def available(self) -> bool:
        try:
            import tesserocr  # noqa: F401
        except ImportError:
            return False
        return self.path is not None

    def _api(self, model: str, psm: int) -> Any:
        import tesserocr

        key = f"{model}:{psm}"
        if key not in self._apis:
            self._apis[key] = tesserocr.PyTessBaseAPI(path=self.path, lang=model, psm=psm)
        return self._apis[key]

    def script(self, image: Any, lines: Sequence[Bounds] = ()) -> Script:
        """The page's script as Tesseract's OSD names it ("Arabic", "Latin", ...; None if unsure), and whether
        the page stands upright.

        Given ``lines`` (boxes of the page's text lines), OSD sees only those, stacked: half the time of the whole
        page, and no picture or table rules to mistake for glyphs (on the evaluation pages, three Latin pages
        whole read as Fraktur, Cyrillic or Greek, none did as lines)."""
        import tesserocr

        if lines:
            image = _stacked(image, lines)
        scale = OSD_SIDE / max(image.size)
        if scale < 1:
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        with self._lock:
            api = self._api("osd", tesserocr.PSM.OSD_ONLY)
            api.SetImage(image)
            found = api.DetectOrientationScript()
        if not found:
            return Script(None, upright=False)
        return Script(str(found["script_name"]) if found.get("script_name") else None,
                      upright=found.get("orient_deg") == 0)

    def model_for(self, script: str | None) -> str | None:
        """The installed models for a script RapidOCR cannot read ("Fraktur+frk": the script's model and its
        principal language's, in Tesseract's notation), or None when the script's model is not installed."""
        if script is None or script in RAPID_SCRIPTS:
            return None
        model = SCRIPT_MODELS.get(script, script)
        if model not in self.models:
            return None
        language = SCRIPT_LANGUAGES.get(model)
        return f"{model}+{language}" if language in self.models else model

    def lines(self, image: Any, model: str, dpi: int, detected: Sequence[Bounds] = (),
              upright: bool = False) -> list[Line]:
        """Text lines with their boxes (pixels of ``image``) and confidences, for the layout step to order.

        The boxes come from the line iterator; the text from the page text, line for line, because the
        iterator gives right-to-left lines in visual order and the page text in logical (reading) order.
        A page not known to be ``upright`` is turned by Tesseract's own orientation detection first (some 0.3-0.5 s
        a page). ``detected`` are the lines another detector found on the page. When Tesseract's own layout analysis
        left out most of them, those it left out are read one by one: its analysis can lose most of a page
        (lines of pointed Hebrew, whose vowel points fill the space between lines, come out as a handful of
        text lines). Where it read most of them, what it left out is mostly what it judged a picture (a map's
        labels), and stays out.
        """
        import tesserocr

        level = tesserocr.RIL.TEXTLINE
        found: list[tuple[str, tuple[int, int, int, int], float]] = []
        with self._lock:
            api = self._api(model, tesserocr.PSM.AUTO if upright else tesserocr.PSM.AUTO_OSD)
            api.SetImage(image)
            api.SetSourceResolution(dpi)
            api.Recognize()
            page_lines = [ln.strip() for ln in (api.GetUTF8Text() or "").splitlines() if ln.strip()]
            iterator = api.GetIterator()
            if iterator is not None:
                for item in tesserocr.iterate_level(iterator, level):
                    try:
                        text = (item.GetUTF8Text(level) or "").strip()
                    except RuntimeError:  # tesserocr raises "No text returned" for a line found empty
                        continue
                    box = item.BoundingBox(level)
                    if text and box:
                        found.append((text, box, float(item.Confidence(level)) / 100.0))
        if len(page_lines) == len(found):
            found = [(logical, box, conf) for logical, (_, box, conf) in zip(page_lines, found, strict=True)]
        lines = [Line(" ".join(text.split()), float(b[0]), float(b[1]), float(b[2]), float(b[3]), conf)
                 for text, b, conf in found]
        missed = [box for box in detected if not _covered(box, lines)]
        if len(missed) <= len(detected) / 2:
            return lines
        return lines + self._missed(image, model, dpi, missed)

    def _missed(self, image: Any, model: str, dpi: int,
                boxes: list[Bounds]) -> list[Line]:
        """Each box read as a single line of text. Only boxes lying flat: on a page Tesseract turned itself,
        the detector's boxes stand on end and read as nothing useful."""
        import tesserocr

        read: list[Line] = []
        with self._lock:
            api = self._api(model, tesserocr.PSM.RAW_LINE)
            for x1, y1, x2, y2 in boxes:
                if x2 - x1 <= y2 - y1:
                    continue
                api.SetImage(_line_image(image, (x1, y1, x2, y2)))
                api.SetSourceResolution(dpi)
                text = " ".join((api.GetUTF8Text() or "").split())
                if text:
                    read.append(Line(text, x1, y1, x2, y2, api.MeanTextConf() / 100.0))
        return read


def _line_image(image: Any, box: Bounds) -> Any:
    """The line cut from the page with ``LINE_PAD`` pixels around it (within the page)."""
    x1, y1, x2, y2 = box
    return image.crop((max(0, int(x1) - LINE_PAD), max(0, int(y1) - LINE_PAD),
                       min(image.width, int(x2) + LINE_PAD), min(image.height, int(y2) + LINE_PAD)))


def _stacked(image: Any, lines: Sequence[Bounds]) -> Any:
    """The lines cut from the page and stacked top to bottom on white."""
    from PIL import Image

    crops = [_line_image(image, box) for box in sorted(lines, key=lambda box: (box[1], box[0]))]
    stacked = Image.new("RGB", (max(c.width for c in crops), sum(c.height for c in crops)), "white")
    top = 0
    for crop in crops:
        stacked.paste(crop, (0, top))
        top += crop.height
    return stacked


def _covered(box: Bounds, lines: list[Line]) -> bool:
    """A detected line box is covered when the lines Tesseract read across its vertical middle span at least half
    of its width (together: one detected box may run across a gutter Tesseract saw)."""
    x1, y1, x2, y2 = box
    middle = (y1 + y2) / 2
    return sum(max(0.0, min(x2, ln.x2) - max(x1, ln.x1)) for ln in lines if ln.y1 <= middle <= ln.y2) >= (x2 - x1) / 2
