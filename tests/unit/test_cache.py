import pytest

from ocr_runner.cache import ResultCache, page_key
from ocr_runner.engines.base import EnginePage, EngineResult
from ocr_runner.tasks import Task

pytestmark = pytest.mark.unit


def job(image=b"a", **kw):
    return EnginePage(image=image, task=kw.pop("task", Task.OCR), prompt=kw.pop("prompt", "<image>\nFree OCR."), **kw)


def result(text="hello", error=None):
    return EngineResult(text=text, error=error, engine="e", model="m")


def test_key_changes_with_content_task_and_settings():
    keys = {page_key(j) for j in (job(), job(b"b"), job(task=Task.MARKDOWN), job(crop_mode=False), job(max_new_tokens=5))}
    assert len(keys) == 5
    assert page_key(job()) == page_key(job())


def test_hit_miss_and_failures_not_cached():
    cache = ResultCache(1_000_000)
    assert cache.get(job()) is None
    cache.put(job(), result())
    assert cache.get(job()).text == "hello"
    cache.put(job(b"x"), result(error="boom"))
    assert cache.get(job(b"x")) is None


def test_bounded_by_bytes_evicting_least_recent():
    cache = ResultCache(3 * (512 + 100))
    for i in range(5):
        cache.put(job(bytes([i])), result("x" * 100))
    assert len(cache) == 3 and cache.get(job(bytes([0]))) is None and cache.get(job(bytes([4]))) is not None
