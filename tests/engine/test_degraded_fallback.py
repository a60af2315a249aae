"""ENGINE=auto on a GPU host whose DeepSeek model fails to load: the CPU engine serves, never silently."""

import asyncio
import json

import pytest

from ocr_runner.engines import factory
from ocr_runner.engines.plan import plan_engine
from ocr_runner.http.serving import OCRServing
from ocr_runner.settings import load_settings

pytestmark = pytest.mark.engine


def test_a_gpu_host_that_cannot_load_deepseek_reports_degraded_with_the_reason(monkeypatch, tmp_path):
    from prometheus_client import REGISTRY

    monkeypatch.setattr(factory, "cuda_available", lambda: True)  # torch "sees" a GPU: the load itself must fail
    bad = tmp_path / "not-a-checkpoint"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "llava", "architectures": ["LlavaForCausalLM"]}))
    settings = load_settings(model_name=str(bad), engine="auto", device="cpu", jobs_dir=str(tmp_path / "jobs"))
    plan = plan_engine(settings, gpu_present=True)
    assert plan.engine == "deepseek" and plan.fallback

    engine = factory.create_engine(settings, plan)
    health = engine.health()
    assert (engine.name, health.degraded) == ("rapidocr", True)
    assert "ENGINE=auto and an NVIDIA GPU is present, but" in health.reason
    assert f"{bad}: config.json (model_type 'llava'" in health.reason  # the checkpoint and what was found

    async def engine_health():
        return health

    serving = OCRServing(settings, plan, infer=None, engine_health=engine_health)
    answer = json.loads(asyncio.run(serving.health()).body)
    assert (answer["status"], answer["engine"], answer["degraded"]) == ("degraded", "rapidocr", True)
    assert answer["reason"] == health.reason
    assert REGISTRY.get_sample_value("ocr_engine_degraded") == 1.0

    async def planned_health():
        return health.model_copy(update={"degraded": False})

    serving.engine_health = planned_health
    assert json.loads(asyncio.run(serving.health()).body)["status"] == "ok"
    assert REGISTRY.get_sample_value("ocr_engine_degraded") == 0.0


def test_engine_deepseek_still_stops_start_up_on_a_load_failure(monkeypatch, tmp_path):
    from ocr_runner.models.layouts import UnsupportedCheckpoint

    monkeypatch.setattr(factory, "cuda_available", lambda: True)
    settings = load_settings(model_name=str(tmp_path / "absent"), engine="deepseek", device="cpu")
    with pytest.raises(UnsupportedCheckpoint, match="absent: no config.json"):
        factory.create_engine(settings, plan_engine(settings, gpu_present=True))
