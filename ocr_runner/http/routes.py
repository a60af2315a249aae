"""The service's FastAPI routes: health, the web page, uploads and async jobs.

They sit on the app BentoML mounts at ``/`` (its ``@bentoml.api`` routes keep priority) and
reach the service's ``OCRServing`` through the app's state, set when the service starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from ..errors import UnprocessableRequest
from ..options import JobRequest, UploadOptions
from ..schemas import ErrorResponse, HealthResponse, JobStatus, OCRResponse
from .docs import openapi_document
from .errors import json_error
from .serving import OCRServing

STATIC = Path(__file__).resolve().parent / "static"
UI_PAGE = (STATIC / "ui.html").read_text(encoding="utf-8")
SWAGGER_PAGE = (STATIC / "swagger.html").read_text(encoding="utf-8")


def serving(request: Request) -> OCRServing:
    return request.app.state.serving


def owner(request: Request) -> str | None:
    """The API key id ``ApiKeyAuth`` put in the request's state (None when keys are off): a job's owner."""
    return getattr(request.state, "api_key_id", None)


Serving = Annotated[OCRServing, Depends(serving)]
Owner = Annotated[str | None, Depends(owner)]
# Documented instead of FastAPI's own validation-error schema: ``ValidationErrorShape`` reshapes those.
ERRORS = {status: {"model": ErrorResponse} for status in (400, 404, 409, 413, 422, 503)}
pages = APIRouter()
jobs = APIRouter(prefix="/jobs", tags=["jobs"], responses=ERRORS)


class UploadForm(UploadOptions):
    """The form beside ``file``; other files are ignored, other fields refused (checked in the route)."""

    model_config = {"extra": "ignore"}


@pages.get("/health", response_model=HealthResponse)
async def health(service: Serving) -> Any:
    return await service.health()


@pages.get("/", response_class=HTMLResponse, include_in_schema=False)
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE)


@pages.get("/docs.json", include_in_schema=False)
async def openapi(request: Request, service: Serving) -> Any:
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        settings = service.settings
        state.openapi = openapi_document(
            state.openapi_source(), keys_on=bool(settings.api_keys or settings.api_keys_file),
            public_paths=tuple(settings.public_paths),
        )
    return state.openapi


@pages.get("/ui", response_class=HTMLResponse, summary="A small web page: drop a file, see the result")
async def ui() -> HTMLResponse:
    return HTMLResponse(UI_PAGE)


@pages.post("/upload-ocr", response_model=OCRResponse, responses=ERRORS, summary="OCR an uploaded file (multipart)")
async def upload_ocr(
    request: Request,
    service: Serving,
    options: Annotated[UploadForm, Form()],
    file: Annotated[UploadFile | None, File(description="An image (PNG, JPEG, TIFF, WebP, BMP, GIF) or a PDF.")] = None,
) -> Any:
    """Multipart upload: ``file`` plus the task and the same options as the JSON endpoints, as form fields.

    Served by FastAPI rather than ``@bentoml.api`` so that a form value is never fetched as a
    URL and malformed forms get a 4xx.
    """
    form = await request.form()  # parsed once already; this is FastAPI's cached copy
    unknown = sorted(k for k, v in form.multi_items()
                     if isinstance(v, str) and k not in UploadForm.model_fields and k != "file")
    if unknown:
        return json_error(UnprocessableRequest(f"unknown form fields: {', '.join(unknown)}", field=unknown[0]))
    return await service.upload(await file.read() if file is not None else None, options)


@jobs.post("", status_code=202, response_model=JobStatus, summary="Submit a long document as a job")
async def submit_job(body: JobRequest, service: Serving, key: Owner) -> Any:
    """Validate the document now (4xx at once), then read it in the background; poll ``/jobs/{id}``.

    With API keys on, the job is the submitting key's: any other key is answered 404 for it.
    """
    return await service.submit_job(body, key)


@jobs.get("/{job_id}", response_model=JobStatus, summary="A job's state and progress")
async def job_status(job_id: str, service: Serving, key: Owner) -> Any:
    return await service.job(job_id, key)


@jobs.get("/{job_id}/result", response_model=OCRResponse, summary="A finished job's result")
async def job_result(job_id: str, service: Serving, key: Owner) -> Any:
    """The OCR response once completed; 409 otherwise (a failed job's body says why and its status)."""
    return await service.job_result(job_id, key)


@jobs.delete("/{job_id}", response_model=JobStatus, summary="Cancel a job")
async def cancel_job(job_id: str, service: Serving, key: Owner) -> Any:
    return await service.job(job_id, key, cancel=True)


def build_app(*routers: APIRouter) -> FastAPI:
    """The app BentoML mounts: these routes, the ``routers`` given (the OpenAI-compatible ones) and the
    MCP endpoint. BentoML runs a mounted app's lifespan, which runs the MCP session manager.
    """
    from contextlib import asynccontextmanager

    from .mcp_tools import build_mcp, mcp_app

    mcp = mcp_app(build_mcp(lambda: app.state.serving))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        async with mcp.router.lifespan_context(mcp):
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(pages)
    app.include_router(jobs)
    for router in routers:
        app.include_router(router)
    app.router.routes.extend(mcp.routes)  # POST/GET/DELETE /mcp, beside the other routes
    return app
