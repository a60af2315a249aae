"""``/v1/chat/completions`` and ``/v1/models``; errors leave in OpenAI's shape (``OpenAIErrorShape``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import OCRError
from ..http.errors import json_error
from ..http.middleware import ErrorBodyRewrite, Scope
from .protocol import ChatCompletion, ChatCompletionRequest, ModelList, openai_error
from .serving import OpenAIServing

router = APIRouter(prefix="/v1", tags=["openai"])
PREFIX = "/v1/"
# OpenAI's error types by status class.
_TYPES = {401: "authentication_error", 404: "not_found_error", 413: "invalid_request_error",
          429: "rate_limit_error", 503: "server_error"}


def openai_serving(request: Request) -> OpenAIServing:
    state = request.app.state
    if getattr(state, "openai", None) is None:
        state.openai = OpenAIServing(state.serving)
    return state.openai


@router.get("/models", response_model=ModelList, summary="The loaded model (OpenAI-compatible)")
async def models(request: Request) -> Any:
    return (await openai_serving(request).models()).model_dump()


@router.post("/chat/completions", response_model=ChatCompletion,
             summary="OCR through OpenAI's chat-completions protocol")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    """Each ``image_url`` part (a data: URL or an http(s) URL; an image or a PDF) is a document; an official
    DeepSeek-OCR prompt in the text picks its task, other text is a free prompt. ``stream: true`` sends a
    page's text as soon as it and the pages before it are read."""
    serving = openai_serving(request)
    try:
        if body.stream:
            events = serving.stream(body)
            first = await events.__anext__()  # the request's errors come before the first event
            return StreamingResponse(_chain(first, events), media_type="text/event-stream")
        return JSONResponse((await serving.complete(body)).model_dump())
    except OCRError as exc:
        return json_error(exc)


async def _chain(first: str, rest: Any) -> Any:
    yield first
    async for event in rest:
        yield event


class OpenAIErrorShape(ErrorBodyRewrite):
    """Every error answer under ``/v1/`` (from routes, auth, limits or validation) in OpenAI's shape."""

    def wants(self, scope: Scope, status: int) -> bool:
        return status >= 400 and scope.get("path", "").startswith(PREFIX)

    def rewrite(self, status: int, body: bytes) -> tuple[int, bytes]:
        try:
            data = json.loads(body)
        except ValueError:
            return status, body
        if not isinstance(data, dict) or "error_code" not in data:
            return status, body
        code = data["error_code"]
        kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return status, json.dumps(openai_error(str(data.get("error", "")), kind, code, data.get("field"))).encode()

