"""Shared test helpers: rendered pages, encoded files, a real `bentoml serve` process."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent


def render_page(lines: list[str], size: tuple[int, int] = (900, 400), font_size: int = 36) -> Image.Image:
    """A white page with black text lines, one per 1.8 font heights."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    for row, line in enumerate(lines):
        draw.text((30, 30 + int(row * font_size * 1.8)), line, fill="black", font=font)
    return image


def noise_image(size: tuple[int, int], seed: int) -> Image.Image:
    """Deterministic random RGB noise: images the tiny model can tell apart."""
    import random

    rng = random.Random(seed)
    return Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3)))


def encode(image: Image.Image, fmt: str = "PNG", **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_options)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BentoServer:
    """`bentoml serve` of this project on a free loopback port, stopped on ``close``."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {
            **os.environ,
            "BENTOML_DO_NOT_TRACK": "True",
            # Its own BENTOML_HOME: BentoML wipes $BENTOML_HOME/prometheus_multiproc_dir as a server starts.
            "BENTOML_HOME": str(log_path.with_suffix(".bentoml-home")),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "JOBS_DIR": str(log_path.with_suffix(".jobs")),
            # This checkout's service.py and ocr_runner, whatever the environment's editable install points at.
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            **env,
        }
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", "service:OCRService", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"bentoml serve not ready after {timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def __enter__(self) -> BentoServer:
        """Ready to serve (a server that cannot get ready is stopped before the error is raised)."""
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def make_pdf(pages: list[list[str]], password: str | None = None) -> bytes:
    """A real multi-page PDF with one rendered text image per page (PIL's PDF writer)."""
    images = [render_page(lines, size=(850, 1100), font_size=40) for lines in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=100.0)
    return buffer.getvalue()


def engine_page(image: bytes, task=None, **mode):
    """An engine page for ``task`` (OCR by default) with the task's official prompt."""
    from ocr_runner.engines import EnginePage
    from ocr_runner.tasks import Task, build_prompt

    task = task or Task.OCR
    return EnginePage(image=image, task=task, prompt=build_prompt(task, text_to_locate="x"), **mode)


def run_with_settings(engine, jobs: list, **updates) -> list:
    """``engine.run_batch(jobs)`` with some settings changed for this call only."""
    reference = engine.settings
    engine.settings = reference.model_copy(update=updates)
    try:
        return engine.run_batch(jobs)
    finally:
        engine.settings = reference


def make_text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose lines are real text (Helvetica), i.e. a page with a text layer."""
    body = "".join(f"BT /F1 24 Tf 72 {720 - 40 * i} Td ({line}) Tj ET\n" for i, line in enumerate(lines))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(body)} >>\nstream\n{body}endstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = "%PDF-1.4\n", []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


def redis_test_url() -> str:
    """The Redis the tests may use (REDIS_TEST_URL, which .ci/run starts and sets).

    Skips without one, unless REQUIRE_REDIS_TESTS=1 (set by CI) makes that a failure.
    """
    import pytest

    url = os.environ.get("REDIS_TEST_URL")
    reason = "REDIS_TEST_URL is not set (.ci/run starts a redis-server and sets it)"
    if url:
        try:
            import redis

            redis.Redis.from_url(url, socket_timeout=2).ping()
            return url
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same reason
            reason = f"Redis at {url} is not reachable ({exc})"
    if os.environ.get("REQUIRE_REDIS_TESTS") == "1":
        pytest.fail(f"REQUIRE_REDIS_TESTS=1 but {reason}")
    pytest.skip(reason)
