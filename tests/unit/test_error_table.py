"""Domain codes below the edge, one table from code to status at it."""

import pytest

from ocr_runner.errors import EngineItemFailed, ErrorCode, Overloaded, UnprocessableRequest, error_for
from ocr_runner.http.errors import STATUS, body_of, headers_of, status_of

pytestmark = pytest.mark.unit


def test_every_code_has_a_status():
    assert set(STATUS) == set(ErrorCode)
    assert all(400 <= status < 600 for status in STATUS.values())


def test_a_code_reported_across_the_engine_boundary_comes_back_as_its_error():
    rejected = error_for("unprocessable", "input could not be prepared", field="image")
    assert isinstance(rejected, UnprocessableRequest) and status_of(rejected) == 422 and rejected.field == "image"
    full = error_for(ErrorCode.OVERLOADED, "queue full")
    assert isinstance(full, Overloaded) and status_of(full) == 503 and headers_of(full)["Retry-After"] == "5"
    assert isinstance(error_for("no_such_code", "?"), EngineItemFailed)


def test_the_error_body_leaves_empty_fields_out():
    assert body_of(EngineItemFailed("boom")) == {"success": False, "error": "boom", "error_code": "engine_failure"}
