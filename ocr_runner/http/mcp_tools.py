"""The tasks as MCP tools, at ``/mcp`` (streamable HTTP, the official ``mcp`` SDK).

Agents call ``ocr``, ``document_to_markdown`` and ``locate_text`` with a document by URL or
as base64; each call goes through ``OCRServing`` like a request to the task endpoints, and
the service's middleware applies to ``/mcp`` as to every route (API keys, rate and body
limits). Stateless, with JSON answers: any replica can take any call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from ..errors import OCRError
from ..options import LocateOptions, TaskDocument
from ..tasks import Task

PATH = "/mcp"
Document = Annotated[str, Field(description="The image or PDF: an http(s) URL, a data: URL, or base64.")]
Pages = Annotated[str | None, Field(description="PDF page range, e.g. '1-3,5' (every page when left out).")]
ForceOcr = Annotated[bool, Field(description="PDFs: recognise pages even where they carry a text layer.")]


def build_mcp(serving: Callable[[], Any]) -> Any:
    """The MCP server; ``serving`` returns the service's ``OCRServing`` once it has started."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(
        name="deepseek-ocr",
        instructions="OCR for images and PDFs: plain text, markdown with layout, or where a text appears.",
    )

    async def read(task: Task, document: str, options: LocateOptions) -> Any:
        service = serving()
        source = {"document_url": document} if document.startswith(("http://", "https://")) else {
            "image_base64": document}
        try:
            request = await service.request_for(task, TaskDocument(**options.model_dump(), **source, task=task.value))
            return await service.read(request)
        except OCRError as exc:  # the tool call fails with the service's own message
            raise ToolError(f"{exc.code.value}: {exc.message}") from None

    @server.tool(description="Free OCR: the document's text in reading order (PDF pages split by a marker line).")
    async def ocr(document: Document, pages: Pages = None, force_ocr: ForceOcr = False) -> str:
        response = await read(Task.OCR, document, LocateOptions(pages=pages, force_ocr=force_ocr))
        return response.result or ""

    @server.tool(description="The document as markdown: headings, tables and figures in reading order.")
    async def document_to_markdown(document: Document, pages: Pages = None, force_ocr: ForceOcr = False) -> str:
        response = await read(Task.MARKDOWN, document, LocateOptions(pages=pages, force_ocr=force_ocr))
        return response.result or ""

    @server.tool(description="Where a text appears: boxes in pixels of each page, with page numbers.")
    async def locate_text(document: Document, text: Annotated[str, Field(description="The text to find.")],
                          pages: Pages = None) -> str:
        response = await read(Task.LOCATE, document, LocateOptions(pages=pages, text_to_locate=text))
        return json.dumps([box.model_dump() for box in response.boxes])

    return server


def mcp_app(server: Any) -> Any:
    """The streamable-HTTP ASGI app; its lifespan runs the session manager."""
    from mcp.server.transport_security import TransportSecuritySettings

    # Host checks guard a server on a desktop against DNS rebinding; this one sits behind API keys
    # and load balancers with Host headers of their own.
    return server.streamable_http_app(
        streamable_http_path=PATH, stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

