"""Kubernetes manifests validate against the Kubernetes schemas; the BentoCloud file names our services."""

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.33"


def documents() -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "deployment.yaml").read_text()) if d]


@pytest.mark.parametrize("document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_kubernetes(document):
    import kubernetes_validate
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_deployment_asks_for_a_gpu_and_uses_bentoml_probes():
    [deployment] = [d for d in documents() if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["ports"][0]["containerPort"] == 8000


def test_bentocloud_config_scales_the_engine_on_a_gpu():
    config = yaml.safe_load((DEPLOY / "bentocloud.yaml").read_text())
    assert config["bento"].startswith("deepseek-ocr")
    assert set(config["services"]) == {"ocr-engine", "deepseek-ocr"}
    assert config["services"]["ocr-engine"]["instance_type"].startswith("gpu")


def test_replicas_share_redis():
    """Several replicas (the autoscaler's) need shared jobs and limits: REDIS_URL names the Redis Service."""
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in documents()}
    config = by_kind[("ConfigMap", "deepseek-ocr-config")]["data"]
    service = by_kind[("Service", "deepseek-ocr-redis")]
    redis = by_kind[("StatefulSet", "deepseek-ocr-redis")]
    port = service["spec"]["ports"][0]["port"]
    assert config["REDIS_URL"] == f"redis://{service['metadata']['name']}:{port}/0"
    assert service["spec"]["selector"] == redis["spec"]["template"]["metadata"]["labels"]
    deployment = by_kind[("Deployment", "deepseek-ocr")]
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert "JOBS_DIR" not in env  # the embedded store is for one server
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(config["SHUTDOWN_GRACE_S"])


def test_bentocloud_api_replicas_get_a_redis_url():
    config = yaml.safe_load((DEPLOY / "bentocloud.yaml").read_text())
    assert config["services"]["deepseek-ocr"]["scaling"]["max_replicas"] > 1
    assert "deepseek-ocr-redis" in config["secrets"]
