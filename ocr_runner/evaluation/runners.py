"""Ways to read an evaluation document: an engine in-process, Tesseract, or a live service.

Every runner returns the document's text (pages joined as the service joins them), so all
are scored by the same code.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from functools import cached_property
from typing import Protocol

from ..options import LocateOptions
from ..tasks import Task
from .manifest import EvalDocument

# Language codes (ISO 639-1/3, as written in MANIFEST kind tags) to Tesseract's traineddata names.
TESSERACT_LANGS = {
    "en": "eng", "de": "deu", "fr": "fra", "it": "ita", "es": "spa", "pt": "por", "ar": "ara", "fa": "fas",
    "he": "heb", "kn": "kan", "ko": "kor", "zh": "chi_sim", "th": "tha", "hi": "hin", "ja": "jpn", "ru": "rus",
    "nl": "nld", "pl": "pol", "el": "ell", "uk": "ukr", "ta": "tam", "bn": "ben", "ur": "urd",
    "gsw": "deu",  # Swiss German is written with German's letters
}
# Blackletter pages: German Fraktur's model instead of the modern one.
FRAKTUR = "frk"


class Runner(Protocol):
    name: str

    def read(self, document: EvalDocument) -> str:
        """The document's text as this runner returns it (markdown allowed)."""

    def describe(self) -> str:
        """Engine and version, for the report."""


class EngineRunner:
    """An engine of this project in-process, through the same prepare/assemble path as the service."""

    def __init__(self, engine: str = "rapidocr", *, task: Task = Task.MARKDOWN, force_ocr: bool = True,
                 name: str | None = None) -> None:
        from ..settings import load_settings

        self.name = name or engine
        self.task = task
        self.force_ocr = force_ocr
        self.settings = load_settings(engine=engine, cache_enabled=False)

    @cached_property
    def engine(self):  # type: ignore[no-untyped-def]
        from ..engines.factory import create_engine

        engine = create_engine(self.settings)
        engine.warmup()
        return engine

    def read(self, document: EvalDocument) -> str:
        from ..pipeline import DocumentRequest, PageOutcome, assemble, prepare

        request = DocumentRequest(task=self.task, data=document.file.read_bytes(), options=LocateOptions(force_ocr=self.force_ocr))
        prepared = prepare(self.settings, request)
        results = self.engine.run_batch([page.engine_page for page in prepared.pages])
        return assemble(prepared, [PageOutcome(r, None, 0.0) for r in results]).result or ""

    def describe(self) -> str:
        mode = "OCR on every page" if self.force_ocr else "PDF text layer where present"
        return f"{self.engine.name} ({self.engine.model}), task {self.task.value}, {mode}"


class TesseractRunner:
    """The ``tesseract`` command (Debian's tesseract-ocr), default page segmentation.

    PDFs are rasterised exactly as the service does (pypdfium2); languages are every one a
    document's kind tags name (``non-english(..)``, ``non-english-words(..)``, ``mixed-script(..)``;
    ``blackletter`` pages German Fraktur's model), then English. A named language whose traineddata
    is missing is an error, not a silent fall back to English.
    """

    name = "tesseract"

    def __init__(self, binary: str = "tesseract") -> None:
        found = shutil.which(binary)
        if found is None:
            raise RuntimeError("tesseract is not installed (Debian: apt-get install tesseract-ocr)")
        self.binary = found

    @cached_property
    def installed_languages(self) -> set[str]:
        out = subprocess.run([self.binary, "--list-langs"], capture_output=True, text=True, check=True).stdout
        return {line.strip() for line in out.splitlines()[1:] if line.strip()}

    def languages(self, document: EvalDocument) -> str:
        wanted = [TESSERACT_LANGS.get(code, code) for code in document.languages]
        if document.blackletter:
            wanted = [FRAKTUR if lang in ("deu", "eng") else lang for lang in wanted] or [FRAKTUR]
        wanted = list(dict.fromkeys([*wanted, "eng"]))
        missing = [lang for lang in wanted if lang not in self.installed_languages]
        if missing:
            packs = " ".join("tesseract-ocr-" + m.replace("_", "-") for m in missing)
            raise RuntimeError(f"tesseract has no traineddata for {'+'.join(missing)} (Debian: apt-get install {packs})")
        return "+".join(wanted)

    def read(self, document: EvalDocument) -> str:
        from ..documents import is_pdf, load_document
        from ..pipeline import PAGE_SEPARATOR

        data = document.file.read_bytes()
        if not is_pdf(data):
            return self._ocr(data, self.languages(document))
        pdf = load_document(data, field="file", pages=None, max_pages=1000, max_pixels=2**31, base_size=1024,
                            crop_mode=True)
        return PAGE_SEPARATOR.join(self._ocr(page.image, self.languages(document)) for page in pdf.pages)

    def _ocr(self, image: bytes, languages: str) -> str:
        with tempfile.NamedTemporaryFile(suffix=".img") as handle:
            handle.write(image)
            handle.flush()
            env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # deterministic and fair on a shared CPU
            completed = subprocess.run([self.binary, handle.name, "stdout", "-l", languages],
                                       capture_output=True, text=True, check=True, env=env)
        return completed.stdout

    def describe(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return ((out.splitlines() or ["tesseract"])[0] + ", default page segmentation (--psm 3), every language a "
                "document's kind names plus English (Fraktur for blackletter), PDFs rasterised like the service's")


class ServiceRunner:
    """A running service (``bentoml serve``) over HTTP: ``/document-to-markdown`` per document."""

    def __init__(self, url: str, *, force_ocr: bool = True, timeout_s: float = 900.0, name: str = "service") -> None:
        self.url = url.rstrip("/")
        self.force_ocr = force_ocr
        self.timeout_s = timeout_s
        self.name = name

    def read(self, document: EvalDocument) -> str:
        import httpx

        body = {"image_base64": base64.b64encode(document.file.read_bytes()).decode(), "force_ocr": self.force_ocr}
        response = httpx.post(f"{self.url}/document-to-markdown", json=body, timeout=self.timeout_s)
        response.raise_for_status()
        return str(response.json().get("result") or "")

    def describe(self) -> str:
        import httpx

        health = httpx.get(f"{self.url}/health", timeout=30).json()
        return f"service at {self.url}: {health.get('engine')} ({health.get('model')}) on {health.get('device')}"


def make_runner(spec: str) -> Runner:
    """``rapidocr``, ``rapidocr+pdftext``, ``deepseek``, ``tesseract`` or ``service=URL``."""
    spec = spec.strip()
    if spec == "tesseract":
        return TesseractRunner()
    if spec.startswith("service="):
        return ServiceRunner(spec.split("=", 1)[1])
    if spec in ("rapidocr", "deepseek"):
        return EngineRunner(spec)
    if spec in ("rapidocr+pdftext", "deepseek+pdftext"):
        return EngineRunner(spec.split("+")[0], force_ocr=False, name=spec)
    raise ValueError(f"unknown engine {spec!r}: use rapidocr, rapidocr+pdftext, deepseek, tesseract or service=URL")

