#!/usr/bin/env bash
# The GPU image's setup script (bentofile.yaml docker.setup_script), run after its Python packages:
# flash-attn pinned. Without build isolation its setup sees the installed torch and fetches the prebuilt
# wheel for that torch, CUDA 12 and Python; the CUDA runtime base image has no nvcc to compile one.
set -euxo pipefail
uv pip install packaging ninja psutil setuptools wheel
uv pip install --no-build-isolation "flash-attn==2.8.3"
