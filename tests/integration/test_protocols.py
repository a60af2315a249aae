"""Third-party clients against a real server: the official ``openai`` SDK and the ``mcp`` SDK's client."""

from __future__ import annotations

import asyncio
import base64

import pytest

from tests.helpers import encode, make_pdf, render_page

pytestmark = pytest.mark.integration
LINES = ["Purchase order 7410", "Deliver by Friday"]


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@pytest.fixture(scope="module")
def client(rapid_server):
    from openai import OpenAI

    return OpenAI(base_url=rapid_server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_openai_sdk_lists_the_loaded_model_and_reads_a_page(client):
    [model] = client.models.list().data
    assert model.id == "rapidocr/PP-OCRv6"
    page = data_url(encode(render_page(LINES)))
    answer = client.chat.completions.create(model=model.id, max_tokens=200, messages=[
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": page}}, {"type": "text", "text": "Free OCR."}]}])
    assert "Purchase order 7410" in answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop" and answer.usage is not None


def test_openai_sdk_streams_pages_in_order(client):
    pdf = data_url(make_pdf([["Streamed sheet alpha"], ["Streamed sheet beta"]]), "application/pdf")
    stream = client.chat.completions.create(
        model="rapidocr/PP-OCRv6", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": [{"type": "text", "text": "Free OCR."},
                                               {"type": "image_url", "image_url": {"url": pdf}}]}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.index("alpha") < text.index("Page Split") < text.index("beta")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and not chunks[-1].choices


def test_openai_sdk_gets_errors_in_openai_shape(client):
    import openai

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["code"] == "model_not_found" and missing.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as no_image:
        client.chat.completions.create(model="rapidocr/PP-OCRv6", messages=[{"role": "user", "content": "hi"}])
    assert no_image.value.body["type"] == "invalid_request_error" and "image_url" in no_image.value.body["message"]


def test_openai_sdk_needs_a_bearer_key_when_keys_are_on(overload_server):
    import openai

    keyed = openai.OpenAI(base_url=overload_server.url + "/v1", api_key="key-one", max_retries=0)
    assert keyed.models.list().data[0].id
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=overload_server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert refused.value.body["code"] == "unauthorized"


def test_mcp_client_lists_and_calls_the_tools(rapid_server):
    from mcp import Client

    page = base64.b64encode(encode(render_page(LINES))).decode()

    async def session():
        async with Client(rapid_server.url + "/mcp") as mcp:
            names = {tool.name for tool in (await mcp.list_tools()).tools}
            text = await mcp.call_tool("ocr", {"document": page})
            boxes = await mcp.call_tool("locate_text", {"document": page, "text": "Friday"})
            broken = await mcp.call_tool("document_to_markdown", {"document": "%%%"})
            return names, text, boxes, broken

    names, text, boxes, broken = asyncio.run(session())
    assert names == {"ocr", "document_to_markdown", "locate_text"}
    assert not text.is_error and "Purchase order 7410" in text.content[0].text
    assert not boxes.is_error and '"label": "Friday"' in boxes.content[0].text
    assert broken.is_error and "invalid_input" in broken.content[0].text


def test_doclings_vlm_pipeline_converts_a_pdf_through_v1(rapid_server, tmp_path, monkeypatch):
    """docling's own pipeline, pointed at this server with its API options (as its docs show for vLLM)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may be downloaded: the pages go to this server
    from docling.datamodel.base_models import InputFormat
    from docling.datamodel.pipeline_options import VlmPipelineOptions
    from docling.datamodel.pipeline_options_vlm_model import ApiVlmOptions, ResponseFormat
    from docling.document_converter import DocumentConverter, PdfFormatOption
    from docling.pipeline.vlm_pipeline import VlmPipeline

    pdf = tmp_path / "two-pages.pdf"
    pdf.write_bytes(make_pdf([["Docling reads page one"], ["Docling reads page two"]]))
    vlm = ApiVlmOptions(url=rapid_server.url + "/v1/chat/completions", params={"model": "rapidocr/PP-OCRv6"},
                        prompt="Free OCR.", timeout=120, scale=1.0, response_format=ResponseFormat.MARKDOWN)
    options = VlmPipelineOptions(enable_remote_services=True, vlm_options=vlm)
    converter = DocumentConverter(format_options={
        InputFormat.PDF: PdfFormatOption(pipeline_cls=VlmPipeline, pipeline_options=options)})
    result = converter.convert(pdf)
    markdown = result.document.export_to_markdown()
    assert result.status.name == "SUCCESS", result.errors
    assert markdown.index("Docling reads page one") < markdown.index("Docling reads page two")
