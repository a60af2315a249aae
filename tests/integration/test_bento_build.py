"""`bentoml build` produces a Bento with the CUDA image, the GPU resource spec and the right contents."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("bentoml-home")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-o", "tag"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [path] = [p for p in (home / "bentos" / "deepseek-ocr").iterdir() if p.name != "latest"]
    return path


def test_cuda_dockerfile(bento):
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "FROM nvidia/cuda:12.6" in dockerfile
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    for package in ("bentoml", "transformers", "rapidocr", "pypdfium2"):
        assert package in requirements


def test_cuda_image_pins_flash_attn_and_its_torch(bento):
    from packaging.requirements import Requirement

    lines = [line.split("#", 1)[0].strip() for line in (bento / "env" / "python" / "requirements.txt").open()]
    requirements = [Requirement(line) for line in lines if line]
    [flash_attn] = [r for r in requirements if r.name == "flash-attn"]
    # The prebuilt wheel for the pinned torch and the image's Python, not the sdist (no nvcc in the image).
    assert flash_attn.url.startswith("https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/")
    assert flash_attn.url.endswith("/flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl")
    assert "==2.8.0" in {str(r.specifier) for r in requirements if r.name == "torch"}
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends --allow-remove-essential python3.11 " in dockerfile


def test_engine_asks_for_a_gpu_and_config_travels(bento):
    services = {s["name"]: s for s in yaml.safe_load((bento / "bento.yaml").read_text())["services"]}
    assert services["ocr-engine"]["config"]["resources"] == {"gpu": 1}
    assert services["deepseek-ocr"]["dependencies"] == [{"service": "ocr-engine"}]
    source = bento / "src"
    assert (source / "configuration.yaml").exists() and (source / "ocr_runner" / "engines" / "deepseek.py").exists()
    assert not (source / "tests").exists() and not (source / "bench").exists()


def test_openapi_document_lists_the_endpoints(bento):
    paths = yaml.safe_load((bento / "apis" / "openapi.yaml").read_text())["paths"]
    assert {"/ocr", "/document-to-markdown", "/parse-figure", "/locate-text", "/batch", "/stream"} <= set(paths)
