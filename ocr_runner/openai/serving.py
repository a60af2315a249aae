"""Chat completions answered by the OCR path: messages become documents, pages become the reply.

Every ``image_url`` part of the user's messages is a document (an image or a PDF; several
parts are several pages) and goes through the orchestrator like a task endpoint's request:
the same batching, cache, limits and repetition handling. The text selects the task: one of
DeepSeek-OCR's official prompts picks its task, any other text is a free prompt.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..errors import EngineItemFailed, InvalidInput, ModelNotFound, OCRError
from ..images import decode_base64
from ..options import LocateOptions
from ..pipeline import PAGE_SEPARATOR, DocumentRequest
from ..schemas import OCRResponse, PageResult
from ..tasks import IMAGE_TOKEN, PROMPTS, Task
from .protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    Model,
    ModelList,
    Usage,
)

_LOCATE = re.compile(r"^Locate <\|ref\|>(?P<text>.+?)<\|/ref\|> in the image\.$", re.DOTALL)
_OFFICIAL = {prompt.replace(IMAGE_TOKEN, "").strip(): task for task, prompt in PROMPTS.items() if task is not Task.LOCATE}


def task_for(text: str) -> tuple[Task, str | None, str | None]:
    """(task, free prompt, text to locate) for a message's text."""
    bare = text.replace(IMAGE_TOKEN, "").strip()
    if not bare:
        return Task.OCR, None, None
    if bare in _OFFICIAL:
        return _OFFICIAL[bare], None, None
    if (located := _LOCATE.match(bare)) is not None:
        return Task.LOCATE, None, located.group("text")
    return Task.OCR, text.strip(), None


class OpenAIServing:
    def __init__(self, serving: Any) -> None:
        self.serving = serving  # http.serving.OCRServing
        self._model: str | None = None

    async def model_id(self) -> str:
        """The loaded model, as the engine names it (asked once)."""
        if self._model is None:
            self._model = (await self.serving.engine_health()).model
        return self._model

    async def models(self) -> ModelList:
        return ModelList(data=[Model(id=await self.model_id(), created=int(time.time()))])

    async def requests_for(self, body: ChatCompletionRequest) -> list[DocumentRequest]:
        if body.model != (model := await self.model_id()):
            raise ModelNotFound(f"model {body.model!r} is not served here; this server runs {model!r}", field="model")
        texts: list[str] = []
        urls: list[str] = []
        for message in body.messages:
            if message.role != "user" or message.content is None:
                continue
            parts = message.content if isinstance(message.content, list) else []
            if isinstance(message.content, str):
                texts.append(message.content)
            for part in parts:
                if part.type == "text" and part.text:
                    texts.append(part.text)
                elif part.type == "image_url" and part.image_url is not None:
                    urls.append(part.image_url.url)
        if not urls:
            raise InvalidInput("the user's messages carry no image_url part: send the page as an image", field="messages")
        task, prompt, locate = task_for("\n".join(texts))
        options = LocateOptions(prompt=prompt, text_to_locate=locate,
                                max_new_tokens=body.max_completion_tokens or body.max_tokens)
        requests = []
        for url in urls:
            if url.startswith(("http://", "https://")):
                data = await self.serving.fetcher.fetch(url, field="image_url")
            else:
                data = decode_base64(url, field="image_url")
            requests.append(DocumentRequest(task, data, options, field="image_url"))
        return requests

    async def complete(self, body: ChatCompletionRequest) -> ChatCompletion:
        requests = await self.requests_for(body)
        started = time.perf_counter()
        answers = await self.serving.orchestrator.run_many(requests)
        responses = [_answered(answer) for answer in answers]
        for request, response in zip(requests, responses):
            self.serving.record(request, response, started)
        content = PAGE_SEPARATOR.join(r.result or "" for r in responses)
        return ChatCompletion(
            id=_completion_id(), created=int(time.time()), model=await self.model_id(),
            choices=[Choice(message=AssistantMessage(content=content))], usage=_usage(responses),
        )

    async def stream(self, body: ChatCompletionRequest) -> AsyncIterator[str]:
        """Server-sent events in OpenAI's chunk format: a page's text as soon as the pages before it are done."""
        requests = await self.requests_for(body)  # raises before the first event: a plain error answer
        started = time.perf_counter()
        documents = [await self.serving.orchestrator.prepare(r) for r in requests]
        model, ident, created = await self.model_id(), _completion_id(), int(time.time())

        def event(delta: Delta, finish: str | None = None, usage: Usage | None = None, choices: bool = True) -> str:
            chunk = ChatCompletionChunk(id=ident, created=created, model=model, usage=usage,
                                        choices=[ChunkChoice(delta=delta, finish_reason=finish)] if choices else [])
            return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

        async def pages() -> AsyncIterator[str]:
            first = True
            for request, document in zip(requests, documents):
                order = [p.page.number for p in document.pages]
                ready: dict[int, str] = {}
                async for item in self.serving.orchestrator.stream(document):
                    if isinstance(item, OCRError):
                        raise item
                    if isinstance(item, OCRResponse):
                        self.serving.record(request, item, started)
                        responses.append(item)
                        continue
                    ready[item.page] = _page_text(item)
                    while order and order[0] in ready:
                        text = ready.pop(order.pop(0))
                        yield text if first else PAGE_SEPARATOR + text
                        first = False

        responses: list[OCRResponse] = []
        yield event(Delta(role="assistant", content=""))
        try:
            async for text in pages():
                yield event(Delta(content=text))
        except OCRError as exc:
            yield f"data: {json.dumps({'error': {'message': exc.message, 'type': 'server_error', 'code': exc.code.value}})}\n\n"
            yield "data: [DONE]\n\n"
            return
        yield event(Delta(), finish="stop")
        if body.stream_options is not None and body.stream_options.include_usage:
            yield event(Delta(), usage=_usage(responses), choices=False)
        yield "data: [DONE]\n\n"


def _answered(answer: OCRResponse | OCRError) -> OCRResponse:
    if isinstance(answer, OCRError):
        raise answer
    return answer


def _page_text(page: PageResult) -> str:
    if not page.success:
        raise EngineItemFailed(f"page {page.page} could not be read: {page.error}")
    return page.result or ""


def _usage(responses: list[OCRResponse]) -> Usage:
    completion = sum((r.metadata.output_tokens or 0) for r in responses if r.metadata is not None)
    return Usage(prompt_tokens=0, completion_tokens=completion, total_tokens=completion)


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
