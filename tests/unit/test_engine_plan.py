"""One engine plan, decided once: which engine, how it batches, and why."""

import pytest

from ocr_runner.engines.plan import plan_engine
from ocr_runner.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("settings", "gpu", "engine", "batching", "fallback"),
    [
        ({"engine": "rapidocr"}, True, "rapidocr", "none", False),
        ({"engine": "auto"}, False, "rapidocr", "none", False),
        ({"engine": "auto"}, True, "deepseek", "continuous", True),
        ({"engine": "auto", "batching": "static"}, True, "deepseek", "static", True),
        ({"engine": "deepseek"}, False, "deepseek", "continuous", False),  # obeyed, even without a GPU
        ({"engine": "deepseek", "batching": "static", "max_batch_size": 1}, True, "deepseek", "none", False),  # seed's
        ({"engine": "deepseek", "max_batch_size": 1}, True, "deepseek", "continuous", False),  # one row at a time
    ],
)
def test_the_plan_for_each_setting_and_host(settings, gpu, engine, batching, fallback):
    plan = plan_engine(load_settings(**settings), gpu_present=gpu)
    assert (plan.engine, plan.batching, plan.fallback) == (engine, batching, fallback)
    assert plan.reason.startswith(f"ENGINE={settings['engine']}")


def test_only_static_batching_goes_through_bentoml_batches():
    settings = load_settings(engine="deepseek", batching="static", max_batch_size=4, max_latency_ms=900)
    assert plan_engine(settings).bentoml_batching(settings) == {
        "batchable": True, "max_batch_size": 4, "max_latency_ms": 900,
    }
    for other in (load_settings(engine="deepseek"), load_settings(engine="rapidocr"),
                  load_settings(engine="deepseek", batching="static", max_batch_size=1)):
        assert plan_engine(other).bentoml_batching(other) == {"batchable": False}


def test_a_gpu_host_whose_torch_has_no_cuda_serves_the_cpu_engine_and_says_why(monkeypatch):
    from ocr_runner.engines import factory

    monkeypatch.setattr(factory, "cuda_available", lambda: False)
    settings = load_settings(engine="auto")
    engine = factory.create_engine(settings, plan_engine(settings, gpu_present=True))
    health = engine.health()
    assert health.engine == "rapidocr" and "torch sees no CUDA device" in health.reason
