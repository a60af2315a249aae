#!/usr/bin/env bash
# Install the service under /opt/deepseek-ocr with its own user and a systemd unit.
# Usage: sudo deploy/setup.sh [--gpu]   (--gpu installs the CUDA build of torch and flash-attn)
set -euo pipefail
SOURCE="$(cd "$(dirname "$0")/.." && pwd)"
TARGET=/opt/deepseek-ocr
id deepseek-ocr >/dev/null 2>&1 || useradd --system --home /var/lib/deepseek-ocr --create-home deepseek-ocr
mkdir -p "$TARGET" /var/lib/deepseek-ocr
# Tesseract's script detection and script models: pages in scripts the CPU engine's recogniser cannot read.
grep -v '^#' "$SOURCE/deploy/tesseract-packs.txt" | xargs apt-get install -y -qq >/dev/null
cp -r "$SOURCE"/{service.py,configuration.yaml,bentofile.yaml,pyproject.toml,README.md,ocr_runner} "$TARGET"/
[ -f "$TARGET/.env" ] || cp "$SOURCE/.env.example" "$TARGET/.env"
python3 -m venv "$TARGET/.venv"
if [ "${1:-}" = "--gpu" ]; then
  "$TARGET/.venv/bin/pip" install torch --index-url https://download.pytorch.org/whl/cu126
  "$TARGET/.venv/bin/pip" install "$TARGET[gpu]"
else
  "$TARGET/.venv/bin/pip" install torch==2.13.0 "$TARGET"
fi
mkdir -p "$TARGET/.ocr-jobs"
chown -R deepseek-ocr: "$TARGET/.ocr-jobs" /var/lib/deepseek-ocr
install -m 0644 "$SOURCE/deploy/deepseek-ocr.service" /etc/systemd/system/deepseek-ocr.service
systemctl daemon-reload
echo "installed; edit $TARGET/.env, then: systemctl enable --now deepseek-ocr"
