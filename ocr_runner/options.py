"""What a client may ask for: the request options, written once and used by every way in.

The task endpoints, ``/stream``, ``/batch`` items, ``/jobs`` and the ``/upload-ocr`` form all
take these models, so an option cannot exist on one route and be missing on another. Field
names are the FastAPI seed's; unknown fields are refused (``extra="forbid"``), so a typo
such as ``"page": "1"`` is a 422 naming it instead of a request that silently reads every page.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The smallest valid PNG (1x1), the example the API docs show.
EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"

ImageBase64 = Annotated[
    str, Field(description="The image or PDF, base64 (a data: URL prefix is accepted).", examples=[EXAMPLE_PNG])
]


DocumentUrl = Annotated[
    str, Field(description="Where to fetch the image or PDF (http or https; public addresses only, unless "
               "URL_ALLOW_HOSTS or URL_ALLOW_RANGES say otherwise).", examples=["https://example.com/scan.png"])
]


class Source(BaseModel):
    """The document itself: inline as base64, or by URL (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")

    image_base64: ImageBase64 | None = None
    document_url: DocumentUrl | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        if (self.image_base64 is None) == (self.document_url is None):
            raise ValueError("send the document as image_base64 or as document_url, one of the two")
        return self


class Options(BaseModel):
    """Options every task takes. Sizes left out use the service's defaults (BASE_SIZE, IMAGE_SIZE, CROP_MODE)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, description="Replace the task's official prompt; <image> is added if missing.")
    base_size: int | None = Field(
        None, description="Global view size: 512, 640, 768, 1024 or 1280 (snapped to the model's modes).",
        examples=[1024],
    )
    image_size: int | None = Field(None, description="Tile size: 512, 640, 768, 1024 or 1280.", examples=[640])
    crop_mode: bool | None = Field(None, description="Tile large images (DeepSeek's 'Gundam' mode).")
    max_new_tokens: int | None = Field(None, description="Cap on generated tokens a page (1 to MAX_NEW_TOKENS).")
    pages: str | None = Field(None, description="PDF page range, e.g. '1-3,5,8-' (every page when left out).")
    include_images: bool = Field(False, description="Return figure crops, linked from the markdown as images/….png.")
    annotate: bool = Field(False, description="Return each page with its grounding boxes drawn (PNG).")
    force_ocr: bool = Field(
        False, description="PDFs: recognise every page even where it carries a text layer "
        "(the CPU engine otherwise reads that text directly).",
    )


class LocateOptions(Options):
    """Options of the locate task: every option, and the text to find."""

    text_to_locate: str | None = Field(
        None, description="The text to find (locate task; required there).", examples=["Total"]
    )


class DocumentBody(Source, Options):
    """The JSON body of ``/ocr``, ``/document-to-markdown`` and ``/parse-figure``."""


class LocateBody(Source, LocateOptions):
    """The JSON body of ``/locate-text``."""


class TaskDocument(Source, LocateOptions):
    """A document with its task: the body of ``/stream`` and ``/jobs``, and a ``/batch`` item."""

    task: str = Field("ocr", description="ocr, markdown, figure, locate or describe.")


class JobRequest(TaskDocument):
    """The body of ``POST /jobs``: a document with its task, and where to report that the job ended."""

    callback_url: str | None = Field(
        None, description="POSTed (JSON, signed with X-OCR-Signature) when the job completes or fails; public "
        "http(s) addresses only, unless WEBHOOK_ALLOW_HOSTS or WEBHOOK_ALLOW_RANGES say otherwise.",
        examples=["https://example.com/ocr-callback"],
    )


class UploadOptions(LocateOptions):
    """The form fields of ``/upload-ocr`` beside ``file`` (or ``document_url`` instead of a file)."""

    task: str = Field("ocr", description="ocr, markdown, figure, locate or describe.")
    document_url: DocumentUrl | None = None


def options_of(body: BaseModel) -> LocateOptions:
    """The options part of any request model (the document and its task left out)."""
    return LocateOptions.model_construct(**{k: getattr(body, k) for k in LocateOptions.model_fields if hasattr(body, k)})
