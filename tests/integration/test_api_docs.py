"""The API documentation is the project's own, its example is real, and its page loads nothing from elsewhere."""

from __future__ import annotations

import re

import httpx
import pytest

from ocr_runner.http.docs import EXAMPLE_RESULT, TITLE
from tests.integration.test_web_ui import browser  # noqa: F401 - the shared headless Chromium fixture

pytestmark = pytest.mark.integration


def test_the_document_is_the_projects_with_real_schemas(rapid_server):
    spec = httpx.get(rapid_server.url + "/docs.json").json()
    assert spec["info"]["title"] == TITLE and spec["info"]["version"] not in ("", "None")
    assert "created with BentoML" not in spec["info"]["description"] and "slack" not in spec["info"]["description"]
    assert spec["info"]["contact"]["name"] != "BentoML Team"
    ocr = spec["paths"]["/ocr"]["post"]
    assert ocr["tags"] == ["tasks"] and spec["paths"]["/jobs"]["post"]["tags"] == ["jobs"]
    assert ocr["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OCRResponse"}
    assert ocr["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "securitySchemes" not in spec["components"] and "security" not in spec  # keys are off here


def test_the_example_is_a_real_page_and_its_result_is_what_the_engine_reads(rapid_server):
    spec = httpx.get(rapid_server.url + "/docs.json").json()
    body = spec["paths"]["/ocr"]["post"]["requestBody"]["content"]["application/json"]["example"]
    documented = spec["paths"]["/ocr"]["post"]["responses"]["200"]["content"]["application/json"]["example"]
    answer = httpx.post(rapid_server.url + "/ocr", json=body, timeout=120).json()
    assert answer["result"] == documented["result"] == EXAMPLE_RESULT


def test_keys_on_document_the_security_schemes(overload_server):
    spec = httpx.get(overload_server.url + "/docs.json").json()  # a public path
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert spec["paths"]["/health"]["get"]["security"] == [] and "security" not in spec["paths"]["/ocr"]["post"]


def test_swagger_ui_renders_the_document_from_this_server_only(browser, rapid_server):  # noqa: F811
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(rapid_server.url + "/")
    page.wait_for_selector(".information-container .title", timeout=30_000)
    assert TITLE in page.inner_text(".information-container .title")
    assert page.locator(".opblock-tag-section").count() >= 4
    foreign = [url for url in requested if not url.startswith(rapid_server.url) and not url.startswith("data:")]
    assert not foreign, foreign
    html = httpx.get(rapid_server.url + "/").text
    assert not re.search(r"(src|href)=\"https?://", html)
    page.close()
