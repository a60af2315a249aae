#!/usr/bin/env bash
# Build the local base image of the CPU Bento image: Debian bookworm (minbase) with Python 3.11, pip
# and the libraries opencv needs, imported into docker. Used where no registry image can be pulled.
# Usage (root): deploy/container/base-image.sh [IMAGE]   (default deepseek-ocr-base:bookworm)
set -euo pipefail
IMAGE="${1:-deepseek-ocr-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The host's trust store: builds inside the image fetch from PyPI through whatever CA this machine trusts.
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT

# libgl1 and libglib2.0-0: rapid-layout pulls in opencv-python (not headless), whose cv2 loads them.
# deploy/tesseract-packs.txt: Tesseract's script detection and script models for the CPU engine.
PACKS="$(grep -v '^#' "$(dirname "$0")/../tesseract-packs.txt" | paste -sd, -)"
debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates,libgl1,libglib2.0-0,"$PACKS" \
  bookworm "$ROOTFS" "$MIRROR" >/dev/null
cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
# BentoML's Dockerfile installs uv with the system pip; this image has no other use for that interpreter.
rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  - "$IMAGE" >/dev/null
echo "$IMAGE"
