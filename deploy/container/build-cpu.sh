#!/usr/bin/env bash
# Build the CPU image of the Bento (RapidOCR engine, CPU torch) with no registry access:
# local base image, the CPU torch wheel, `bentoml build -f bentofile.cpu.yaml`, `bentoml containerize`.
# Usage (root or docker group): deploy/container/build-cpu.sh [IMAGE]   (default deepseek-ocr-cpu:latest)
# Elsewhere, fetch torch from PyTorch's CPU index: TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE="${1:-deepseek-ocr-cpu:latest}"
BASE_IMAGE="deepseek-ocr-base:bookworm"   # docker.base_image in bentofile.cpu.yaml
TORCH="torch==2.13.0+cpu"                  # the wheel named in bentofile.cpu.yaml
PYTHON="${PYTHON:-python3}"
export BENTOML_DO_NOT_TRACK=True
# The legacy builder: Debian's docker.io works with BuildKit, but a newer docker CLI without the buildx plugin
# refuses DOCKER_BUILDKIT=1, which `bentoml containerize` sets otherwise.
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

stage() {  # stage NAME COMMAND...: run it, then report its duration on stderr
  local name="$1" start=$SECONDS
  shift
  "$@"
  echo "stage ${name}: $((SECONDS - start))s" >&2
}

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  stage base-image deploy/container/base-image.sh "$BASE_IMAGE" >/dev/null
fi
stage torch-wheel "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} -d build/wheels "$TORCH"
stage bento-build "$PYTHON" -m bentoml build -f bentofile.cpu.yaml -o tag >/dev/null
stage image-build "$PYTHON" -m bentoml containerize deepseek-ocr-cpu:latest -t "$IMAGE" >/dev/null
echo "$IMAGE"
