"""The API documentation this service serves at ``/`` (Swagger UI) and ``/docs.json``.

BentoML's generated document describes BentoML: its title is the service name, its version
"None", its description an advertisement, and its Swagger page loads a tag manager from a
third party. This takes BentoML's paths and schemas and makes the document the project's:
its own title, version, description and contact; tags by purpose; the real response and
error schemas; a real page as the example with the result the CPU engine returns for it
(a test holds the two together); and the security schemes when API keys are on. The page
loads Swagger UI from the files BentoML ships, nothing from elsewhere.
"""

from __future__ import annotations

import base64
import copy
import io
from functools import cache
from importlib import metadata
from typing import Any

from ..schemas import BatchResponse, ErrorResponse, OCRResponse

TITLE = "DeepSeek-OCR on BentoML"
DESCRIPTION = """\
OCR for images and PDFs with the DeepSeek-OCR family of vision-language models, batched on the GPU,
or with the embedded CPU engine on a machine without one.

* One endpoint per task: free OCR, markdown with layout boxes, figure parsing, text location.
* A document is `image_base64` (an image or a PDF, base64) or `document_url`; every JSON endpoint,
  `/batch` item, `/jobs` and the `/upload-ocr` form take the same options, and an unknown field is a 422.
* Errors are `{"success": false, "error", "error_code", "field"}` with the status the code maps to.
* Also: `/v1/chat/completions` (OpenAI-compatible), `/mcp` (Model Context Protocol), `/ui` (a web page).
"""
# The text of the example page, and what the CPU engine reads from it.
EXAMPLE_TEXT = "Invoice 2041 due 12 March"
EXAMPLE_RESULT = "Invoice 2041 due 12 March"
TAGS = [
    {"name": "tasks", "description": "One document, one task."},
    {"name": "documents", "description": "Many documents at once, or a document's pages as they finish."},
    {"name": "jobs", "description": "Long documents in the background: submit, poll, fetch, cancel."},
    {"name": "openai", "description": "The OpenAI chat-completions protocol, for document pipelines."},
    {"name": "service", "description": "Health, the web page and BentoML's probes and metrics."},
]
_TAG_OF = {"/ocr": "tasks", "/document-to-markdown": "tasks", "/parse-figure": "tasks", "/locate-text": "tasks",
           "/upload-ocr": "tasks", "/batch": "documents", "/stream": "documents"}
_RESULTS = {"/ocr": OCRResponse, "/document-to-markdown": OCRResponse, "/parse-figure": OCRResponse,
            "/locate-text": OCRResponse, "/batch": BatchResponse}
_ERRORS = {"400": "Malformed request or document", "413": "Body or image over the limits",
           "422": "Unknown field, impossible option, or input the model rejects",
           "503": "The engine is full: come back after Retry-After"}


@cache
def example_page() -> str:
    """A real small page (PNG, base64): one line of printed text."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (560, 100), "white")
    ImageDraw.Draw(image).text((24, 30), EXAMPLE_TEXT, fill="black", font=ImageFont.load_default(size=28))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def version() -> str:
    try:
        return metadata.version("deepseek-ocr-bentoml")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def openapi_document(generated: dict[str, Any], *, keys_on: bool, public_paths: tuple[str, ...]) -> dict[str, Any]:
    """BentoML's generated document, made this project's (see the module docstring)."""
    spec = copy.deepcopy(generated)
    spec["info"] = {"title": TITLE, "version": version(), "description": DESCRIPTION,
                    "contact": {"name": "deepseek-ocr-bentoml maintainers"},
                    "license": {"name": "Apache-2.0"}}
    spec["tags"] = TAGS
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (OCRResponse, BatchResponse, ErrorResponse):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body.pop("$defs", {}))
        schemas[model.__name__] = body
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            operation["tags"] = [_tag(path)]
            if path in _RESULTS:
                _document_route(path, operation)
            if keys_on and path in public_paths:
                operation["security"] = []
    if keys_on:
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec


def _tag(path: str) -> str:
    if path in _TAG_OF:
        return _TAG_OF[path]
    if path.startswith("/jobs"):
        return "jobs"
    return "openai" if path.startswith("/v1/") else "service"


def _document_route(path: str, operation: dict[str, Any]) -> None:
    """The real result and error schemas of a BentoML route, and a real example for its body."""
    model = _RESULTS[path]
    ok = {"description": "The result", "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
    if path == "/ocr":
        ok["content"]["application/json"]["example"] = {"success": True, "result": EXAMPLE_RESULT}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    operation["responses"] = {"200": ok, **{code: {"description": text, **error} for code, text in _ERRORS.items()}}
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        document = {"image_base64": example_page()}
        if path == "/locate-text":
            document["text_to_locate"] = "2041"
        content["example"] = {"items": [{**document, "task": "ocr"}]} if path == "/batch" else document
