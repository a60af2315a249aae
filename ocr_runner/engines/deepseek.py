"""DeepSeek-OCR-2 and DeepSeek-OCR (v1): batched, left-padded greedy generation."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from ..errors import OCRError
from ..images import load_image
from ..modes import ResolutionMode, snap_mode
from ..settings import Settings
from .base import Engine, EngineHealth, EngineJob, EngineResult
from .torch_env import cuda_available, gpu_name, resolve_device

log = logging.getLogger(__name__)


class DeepseekEngine(Engine):
    """DeepSeek-OCR-2 or v1 (backend picked from the checkpoint's config) from a hub id or a local folder."""

    name = "deepseek"

    def __init__(self, settings: Settings, reason: str = "") -> None:
        import torch

        from .deepseek_backends import load_backend
        from .repetition import WindowedNoRepeatNGram, exempt_ids

        self.settings = settings
        self.reason = reason
        self.model = settings.model_name
        self.device = resolve_device(settings.device)
        self.torch_dtype = _resolve_dtype(settings.dtype, self.device)
        # OCR-2 or v1, chosen from the checkpoint's config.json: model, tokenizer, modes, input preparation.
        self.backend = load_backend(settings, self.torch_dtype, self.device)
        tokenizer = self.backend.tokenizer
        tokenizer.padding_side = "left"  # right padding gives wrong tokens when batched
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.attn_implementation, self.net = self.backend.attn_implementation, self.backend.net
        self.net.eval()
        self._lock = threading.Lock()
        self._torch = torch
        self._tile = self.backend.tile_pixels
        self.supported_modes = self.backend.supported_modes
        self._eos_id = tokenizer.eos_token_id
        self._pad_id = tokenizer.pad_token_id  # set to the EOS token above when the checkpoint has none
        self._repetition_guard = None
        if settings.no_repeat_ngram_size:
            self._repetition_guard = WindowedNoRepeatNGram(
                settings.no_repeat_ngram_size, max(settings.no_repeat_window, settings.no_repeat_ngram_size),
                exempt_ids(tokenizer),
            )
        self._strip_ids = {i for i in (tokenizer.bos_token_id, self._eos_id, self._pad_id) if i is not None}
        log.info(
            "DeepSeek engine ready: %s (%s) on %s (%s, attention %s)",
            self.model, self.backend.family, self.device, self.torch_dtype, self.attn_implementation,
        )

    # -- interface -----------------------------------------------------------------------------

    def run_batch(self, jobs: list[EngineJob]) -> list[EngineResult]:
        results: list[EngineResult | None] = [None] * len(jobs)
        groups: dict[ResolutionMode, list[tuple[int, Any]]] = defaultdict(list)
        for index, job in enumerate(jobs):
            try:
                image = load_image(job.image, max_pixels=self.settings.max_image_pixels)
            except OCRError as exc:
                results[index] = self.failed(exc.message, exc.status)
                continue
            except Exception as exc:  # noqa: BLE001 - a bad item fails alone
                results[index] = self.failed(f"image could not be read: {exc.__class__.__name__}", 400)
                continue
            mode = snap_mode(ResolutionMode(job.base_size, job.image_size, job.crop_mode), self.supported_modes)
            groups[mode].append((index, image))
        for mode, members in groups.items():
            for index, result in self._run_group(mode, [jobs[i] for i, _ in members], members):
                results[index] = result
        return [r if r is not None else self.failed("no result produced") for r in results]

    def health(self) -> EngineHealth:
        return EngineHealth(
            engine=self.name,
            model=self.model,
            model_loaded=True,
            device=self.device,
            cuda_available=cuda_available(),
            gpu_name=gpu_name(),
            dtype=str(self.torch_dtype).removeprefix("torch."),
            attn_implementation=self.attn_implementation,
            reason=self.reason,
        )

    def warmup(self) -> None:
        """Generate once at a realistic size (global view + tiles, batch of two); fail start-up if it cannot."""
        import io

        from PIL import Image

        from ..tasks import PROMPTS, Task

        buffer = io.BytesIO()
        Image.new("RGB", (2 * self._tile, self._tile + self._tile // 2), "white").save(buffer, format="PNG")
        job = EngineJob(image=buffer.getvalue(), task=Task.OCR, prompt=PROMPTS[Task.OCR], max_new_tokens=2)
        for result in self.run_batch([job, job]):
            if result.error is not None:
                raise RuntimeError(f"warm-up generation failed: {result.error}")

    # -- internals -----------------------------------------------------------------------------

    def _run_group(self, mode: ResolutionMode, jobs: list[EngineJob], members: list[tuple[int, Any]]):
        """Generate for a group; on failure (CUDA OOM included) split it in halves before failing any item."""
        try:
            return list(zip([i for i, _ in members], self._generate(mode, jobs, [img for _, img in members])))
        except Exception as exc:  # noqa: BLE001 - isolate the failing item instead of failing the batch
            if _is_out_of_memory(exc):
                self._torch.cuda.empty_cache()
            if len(members) == 1:
                log.exception("DeepSeek generation failed")
                kind = "out of GPU memory" if _is_out_of_memory(exc) else f"{exc.__class__.__name__}: {exc}"
                return [(members[0][0], self.failed(f"generation failed: {kind}"))]
            half = len(members) // 2
            log.warning("batch of %d failed (%s); retrying as %d + %d", len(members), exc, half, len(members) - half)
            return self._run_group(mode, jobs[:half], members[:half]) + self._run_group(
                mode, jobs[half:], members[half:]
            )

    def _generate(self, mode: ResolutionMode, jobs: list[EngineJob], images: list[Any]) -> list[EngineResult]:
        from transformers import LogitsProcessorList

        torch = self._torch
        limits = [min(j.max_new_tokens or self.settings.max_new_tokens, self.settings.max_new_tokens) for j in jobs]
        inputs = self.backend.prepare_inputs(images, [j.prompt for j in jobs], mode)
        inputs = inputs.to(self.device, dtype=self.torch_dtype)
        prompt_len = inputs["input_ids"].shape[1]
        generation: dict[str, Any] = {
            "max_new_tokens": max(limits),
            "do_sample": False,
            "pad_token_id": self._pad_id,
            "eos_token_id": self._eos_id,
        }
        if self._repetition_guard is not None:
            generation["logits_processor"] = LogitsProcessorList([self._repetition_guard])
        if self.settings.min_new_tokens:
            generation["min_new_tokens"] = min(self.settings.min_new_tokens, max(limits))
        started = time.perf_counter()
        with self._lock, torch.inference_mode():
            output = self.net.generate(**inputs, **generation)
        elapsed_ms = (time.perf_counter() - started) * 1000
        results = []
        for row, limit in zip(output[:, prompt_len:].tolist(), limits):
            tokens = _until_eos(row, self._eos_id)[:limit]
            text = self.backend.tokenizer.decode(
                [t for t in tokens if t not in self._strip_ids], skip_special_tokens=False
            )
            results.append(
                EngineResult(
                    text=text,
                    engine=self.name,
                    model=self.model,
                    effective_base_size=mode.base_size,
                    effective_image_size=mode.image_size,
                    effective_crop_mode=mode.crop_mode,
                    output_tokens=len(tokens),
                    batch_size=len(jobs),
                    inference_ms=elapsed_ms,
                )
            )
        return results


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _until_eos(tokens: list[int], eos_id: int | None) -> list[int]:
    if eos_id is not None and eos_id in tokens:
        return tokens[: tokens.index(eos_id)]
    return tokens


def _resolve_dtype(requested: str, device: str):
    import torch

    if requested == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, requested)
