"""DeepSeek-OCR-2 and DeepSeek-OCR (v1): batched, left-padded greedy generation."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import ErrorCode, OCRError
from ..images import load_image
from ..modes import ResolutionMode, snap_mode
from ..settings import Settings
from .base import Engine, EngineBusy, EngineHealth, EnginePage, EngineResult
from .capacity import BatchCapacity, WorstPage, kv_bytes_per_token, rows_that_fit, worst_page
from .continuous import ContinuousBatcher, PageSequence, failure_reason, is_out_of_memory, prefill
from .torch_env import cuda_available, gpu_name, resolve_device

log = logging.getLogger(__name__)

# Below this many pages a thread costs more than it saves.
MIN_PAGES_PER_THREAD = 4


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
        if self.device.startswith("cuda") and not settings.cudnn_attention:
            # cuDNN's sdpa builds an execution plan for every new (batch, length) shape; a decode step
            # always has a new length, so plans cost more than they save (measured: bench/results).
            torch.backends.cuda.enable_cudnn_sdp(False)
        # OCR-2 or v1, chosen from the checkpoint's config.json: model, tokenizer, modes, input preparation.
        self.backend = load_backend(settings, self.torch_dtype, self.device)
        tokenizer = self.backend.tokenizer
        tokenizer.padding_side = "left"  # right padding gives wrong tokens when batched
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.attn_implementation, self.net = self.backend.attn_implementation, self.backend.net
        self.net.eval()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="preprocess")
        self._thread_state = threading.local()
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
        self._batcher: ContinuousBatcher | None = None
        self.capacity = BatchCapacity(settings.max_batch_size, "MAX_BATCH_SIZE")
        if settings.batching == "continuous":
            guard = self._repetition_guard
            self._batcher = ContinuousBatcher(
                self.net, self._encode_group, self._finish_sequence, self._fail_sequence,
                eos_id=self._eos_id, max_rows=settings.max_batch_size, max_admit=settings.prefill_batch_pages,
                kv_room=settings.kv_cache_room,
                max_waiting=settings.max_waiting_pages or 16 * settings.max_batch_size,
                guard=guard.block if guard else None, guard_window=guard.window if guard else 0,
                on_step=self._observe_step,
            )
        log.info(
            "DeepSeek engine ready: %s (%s) on %s (%s, attention %s)",
            self.model, self.backend.family, self.device, self.torch_dtype, self.attn_implementation,
        )

    # -- interface -----------------------------------------------------------------------------

    @property
    def continuous(self) -> bool:
        return self._batcher is not None

    def submit(self, pages: list[EnginePage]) -> list[Future]:
        """Continuous batching: queue the pages and return at once, one future per page.

        Raises ``EngineBusy`` when the queue is full. Pages are prepared (decoded, resized, tiled,
        tokenized) on the preprocessing threads, so the model's thread only sees ready inputs.
        """
        assert self._batcher is not None, "submit() needs BATCHING=continuous"
        futures: list[Future] = [Future() for _ in pages]
        self._batcher.reserve(futures)
        for page, future in zip(pages, futures):
            self._pool.submit(self._prepare_sequence, page, future)
        return futures

    def run_batch(self, pages: list[EnginePage]) -> list[EngineResult]:
        if self._batcher is not None:
            try:
                return [future.result() for future in self.submit(pages)]
            except EngineBusy as exc:
                return [self.failed(str(exc), ErrorCode.OVERLOADED) for _ in pages]
        return self.run_static(pages)

    def run_static(self, pages: list[EnginePage]) -> list[EngineResult]:
        """The pages as one static batch: grouped by mode, one ``generate`` per group, whatever BATCHING says."""
        results: list[EngineResult | None] = [None] * len(pages)
        groups: dict[ResolutionMode, list[tuple[int, Any]]] = defaultdict(list)
        for index, page in enumerate(pages):
            try:
                image = load_image(page.image, max_pixels=self.settings.max_image_pixels)
            except Exception as exc:  # noqa: BLE001 - a bad item fails alone
                results[index] = self._input_error(exc)
                continue
            groups[self._mode(page)].append((index, image))
        for mode, members in groups.items():
            for index, result in self._run_group(mode, [pages[i] for i, _ in members], members):
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
            batching="none" if self.settings.max_batch_size == 1 else self.settings.batching,
            max_batch_size=self.capacity.rows,
            batch_limit=self.capacity.reason,
            reason=self.reason,
        )

    def warmup(self) -> None:
        """Generate once at a realistic size (global view + tiles, batch of two); fail start-up if it cannot."""
        import io

        from PIL import Image

        from ..tasks import PROMPTS, Task

        buffer = io.BytesIO()
        Image.new("RGB", (2 * self._tile, self._tile + self._tile // 2), "white").save(buffer, format="PNG")
        page = EnginePage(image=buffer.getvalue(), task=Task.OCR, prompt=PROMPTS[Task.OCR], max_new_tokens=2)
        for result in self.run_batch([page, page]):
            if result.error is not None:
                raise RuntimeError(f"warm-up generation failed: {result.error}")
        if self._batcher is not None and self.device.startswith("cuda"):
            self._fit_batch_to_gpu_memory()

    # -- decode batch size from GPU memory -----------------------------------------------------

    def fit_batch(self, total_bytes: int, reserved_bytes: int, usable_bytes: int | None = None) -> BatchCapacity:
        """Lower the continuous batch's rows to what fits beside ``reserved_bytes`` on a card of
        ``total_bytes`` (of which this process reaches ``usable_bytes``), each row as wide as the
        longest prompt plus MAX_NEW_TOKENS (see ``capacity``)."""
        row_tokens = self._worst_page.tokens + self.settings.max_new_tokens + self.settings.kv_cache_room
        vocab = self.net.get_output_embeddings().weight.shape[0]
        # Per row and step: the logits in the model's dtype and the float scores picked from.
        logits_bytes = vocab * (self._torch.finfo(self.torch_dtype).bits // 8 + 4)
        row_bytes = kv_bytes_per_token(self.net, self.device) * row_tokens + logits_bytes
        self.capacity = rows_that_fit(
            self.settings.max_batch_size, total_bytes, reserved_bytes, row_bytes,
            self.settings.gpu_memory_utilization, row_tokens, usable_bytes,
        )
        if self._batcher is not None:
            self._batcher.max_rows = self.capacity.rows
        log.info("decode batch: at most %d pages (%s)", self.capacity.rows, self.capacity.reason)
        return self.capacity

    @functools.cached_property
    def _worst_page(self) -> WorstPage:
        """The page and prompt with the most prompt tokens here (see ``capacity.worst_page``)."""
        from ..tasks import PROMPTS

        return worst_page(self._thread_backend().prepare_inputs, self.supported_modes, self._tile, PROMPTS.values())

    def _fit_batch_to_gpu_memory(self) -> None:
        """Measure what a full prefill group of the worst page needs beside the weights, in every mode,
        then fit rows. Runs at start-up, before any request: the batcher's thread is idle meanwhile."""
        torch = self._torch
        device = torch.device(self.device)
        group = min(self.settings.prefill_batch_pages, self.settings.max_batch_size)
        worst = self._worst_page
        peak = 0
        for mode in self.supported_modes:
            inputs = self._preprocess([worst.image] * group, [worst.prompt] * group, mode)
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            with torch.inference_mode():
                output = prefill(self.net, self._device_inputs(inputs))
            torch.cuda.synchronize(device)
            peak = max(peak, torch.cuda.max_memory_allocated(device))
            del output
        free, total = torch.cuda.mem_get_info(device)
        # Another process on the card leaves less than the share: free memory plus what our allocator holds.
        usable = free + torch.cuda.memory_reserved(device)
        self.fit_batch(total, peak, usable)

    # -- continuous batching: the batcher's callbacks ------------------------------------------

    def _prepare_sequence(self, page: EnginePage, future: Future) -> None:
        mode = self._mode(page)
        try:
            image = load_image(page.image, max_pixels=self.settings.max_image_pixels)
            inputs = self._preprocess([image], [page.prompt], mode)
        except Exception as exc:  # noqa: BLE001 - a bad page fails alone
            _answer(future, self._input_error(exc))
            return
        prompt_ids = inputs["input_ids"][0].tolist()
        self._batcher.enqueue(
            PageSequence(inputs, mode, self._token_limit(page), self.settings.min_new_tokens, prompt_ids, future)
        )

    def _encode_group(self, group: list[PageSequence]) -> dict[str, Any]:
        return self._device_inputs(_concat_left_padded([s.inputs for s in group], self._pad_id))

    def _device_inputs(self, inputs) -> dict[str, Any]:
        """Prepared inputs on the device, with the vision encoder's features in place of the pixels."""
        model_inputs = dict(inputs.to(self.device, dtype=self.torch_dtype))
        model_inputs["mm_encoder_outputs"] = {"image": self._encode_images(model_inputs)}
        return model_inputs

    def _finish_sequence(self, sequence: PageSequence, elapsed_ms: float) -> None:
        mode = sequence.mode
        _answer(sequence.future, EngineResult(
            text=self._decode(sequence.generated),
            engine=self.name,
            model=self.model,
            effective_base_size=mode.base_size,
            effective_image_size=mode.image_size,
            effective_crop_mode=mode.crop_mode,
            output_tokens=len(sequence.generated),
            batch_size=sequence.peak_rows,
            inference_ms=elapsed_ms,
        ))

    def _observe_step(self, rows: int, waiting: int) -> None:
        if self.on_decode_step is not None:
            self.on_decode_step(rows, waiting)

    def _fail_sequence(self, sequence: PageSequence, reason: str) -> None:
        _answer(sequence.future, self.failed(f"generation failed: {reason}"))

    # -- internals -----------------------------------------------------------------------------

    def _mode(self, page: EnginePage) -> ResolutionMode:
        return snap_mode(ResolutionMode(page.base_size, page.image_size, page.crop_mode), self.supported_modes)

    def _token_limit(self, page: EnginePage) -> int:
        return min(page.max_new_tokens or self.settings.max_new_tokens, self.settings.max_new_tokens)

    def _input_error(self, exc: Exception) -> EngineResult:
        """An unreadable image is invalid input; one the model's processor rejects (e.g. a prompt with
        two image tokens) is unprocessable."""
        if isinstance(exc, OCRError):
            return self.failed(exc.message, exc.code)
        if isinstance(exc, _PreparationFailed):
            return self.failed(f"input could not be prepared for the model: {exc}", ErrorCode.UNPROCESSABLE)
        return self.failed(f"image could not be read: {exc.__class__.__name__}", ErrorCode.INVALID_INPUT)

    def _decode(self, tokens: list[int]) -> str:
        return self.backend.tokenizer.decode([t for t in tokens if t not in self._strip_ids], skip_special_tokens=False)

    def _thread_backend(self):
        """This thread's copy of the backend: a fast tokenizer must not be shared across threads."""
        backend = getattr(self._thread_state, "backend", None)
        if backend is None:
            backend = self._thread_state.backend = self.backend.for_thread()
        return backend

    def _run_group(self, mode: ResolutionMode, pages: list[EnginePage], members: list[tuple[int, Any]]):
        """Generate for a group; on failure (CUDA OOM included) split it in halves before failing any item."""
        try:
            return list(zip([i for i, _ in members], self._generate(mode, pages, [img for _, img in members])))
        except Exception as exc:  # noqa: BLE001 - isolate the failing item instead of failing the batch
            if is_out_of_memory(exc):
                self._torch.cuda.empty_cache()
            if len(members) == 1 and isinstance(exc, _PreparationFailed):
                return [(members[0][0], self._input_error(exc))]
            if len(members) == 1:
                log.exception("DeepSeek generation failed")
                return [(members[0][0], self.failed(f"generation failed: {failure_reason(exc)}"))]
            half = len(members) // 2
            log.warning("batch of %d failed (%s); retrying as %d + %d", len(members), exc, half, len(members) - half)
            return self._run_group(mode, pages[:half], members[:half]) + self._run_group(
                mode, pages[half:], members[half:]
            )

    def _generate(self, mode: ResolutionMode, pages: list[EnginePage], images: list[Any]) -> list[EngineResult]:
        from transformers import LogitsProcessorList

        torch = self._torch
        limits = [self._token_limit(j) for j in pages]
        inputs = self._preprocess(images, [j.prompt for j in pages], mode)
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
        with self._lock, torch.inference_mode():  # the model serves one batch at a time, vision encoder included
            output = self.net.generate(**self._device_inputs(inputs), **generation)
        elapsed_ms = (time.perf_counter() - started) * 1000
        results = []
        for row, limit in zip(output[:, prompt_len:].tolist(), limits):
            tokens = _until_eos(row, self._eos_id)[:limit]
            results.append(
                EngineResult(
                    text=self._decode(tokens),
                    engine=self.name,
                    model=self.model,
                    effective_base_size=mode.base_size,
                    effective_image_size=mode.image_size,
                    effective_crop_mode=mode.crop_mode,
                    output_tokens=len(tokens),
                    batch_size=len(pages),
                    inference_ms=elapsed_ms,
                )
            )
        return results


    def _preprocess(self, images: list[Any], prompts: list[str], mode: ResolutionMode):
        """The backend's input preparation over the batch, split across threads (resizing and tiling
        dominate on CPU: ~90 ms a page, a third of a 64-page batch on an H100 host when run in one thread).
        Each thread has its own processor copy: a fast tokenizer must not be shared across threads.
        A rejection by the processor is raised as ``_PreparationFailed``: the input's fault, not the model's.
        """
        chunk = max(MIN_PAGES_PER_THREAD, -(-len(images) // self.settings.preprocess_threads))
        spans = [range(start, min(start + chunk, len(images))) for start in range(0, len(images), chunk)]

        def run(span: range):
            return self._thread_backend().prepare_inputs([images[i] for i in span], [prompts[i] for i in span], mode)

        try:
            if len(spans) == 1:
                return run(spans[0])
            return _concat_left_padded(list(self._pool.map(run, spans)), self._pad_id)
        except Exception as exc:  # noqa: BLE001
            raise _PreparationFailed(f"{exc.__class__.__name__}: {exc}") from exc

    def _encode_images(self, inputs: dict[str, Any]):
        """Run the vision encoder over a few pages at a time, so a large batch cannot exhaust GPU memory.

        SAM's global attention builds a relative-position bias per view (about 0.2 GiB each in
        bf16); encoding a batch of 64 pages (448 views) at once needs more than an 80 GB card.
        """
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        pixel_values = inputs.pop("pixel_values")
        local = inputs.pop("pixel_values_local", None)
        counts = inputs.pop("num_local_patches", None)
        grids = inputs.get("patches_grid")  # DeepSeek-OCR v1 only: its tile layout needs the grid
        counts = [int(c) for c in counts] if counts is not None else [0] * pixel_values.shape[0]
        step = self.settings.vision_batch_pages
        features: list[Any] = []
        offset = 0
        for start in range(0, pixel_values.shape[0], step):
            chunk_counts = counts[start : start + step]
            tiles = sum(chunk_counts)
            chunk_local = local[offset : offset + tiles] if local is not None and tiles else None
            offset += tiles
            encoded = self.net.get_image_features(
                pixel_values=pixel_values[start : start + step],
                pixel_values_local=chunk_local,
                num_local_patches=chunk_counts if chunk_local is not None else None,
                **({"patches_grid": grids[start : start + step]} if grids is not None else {}),
                return_dict=True,
            )
            features.extend(encoded.pooler_output)
        return BaseModelOutputWithPooling(pooler_output=features)


def _concat_left_padded(parts: list[Any], pad_id: int):
    """Join processor outputs of sub-batches: token rows left-padded to one width, images stacked."""
    import torch
    from transformers import BatchFeature

    width = max(part["input_ids"].shape[1] for part in parts)
    merged: dict[str, Any] = {}
    keys = dict.fromkeys(key for part in parts for key in part.keys())
    for key in keys:
        values = [part[key] for part in parts if part.get(key) is not None]
        if values and isinstance(values[0], list):  # per-page metadata kept as lists (v1's tile grids)
            merged[key] = [item for value in values for item in value]
            continue
        if key in ("input_ids", "attention_mask"):
            fill = pad_id if key == "input_ids" else 0
            values = [torch.nn.functional.pad(v, (width - v.shape[1], 0), value=fill) for v in values]
        if values:
            merged[key] = torch.cat(values, dim=0)
    lists = [key for key, value in merged.items() if isinstance(value, list)]
    return BatchFeature(merged, skip_tensor_conversion=lists)


class _PreparationFailed(Exception):
    """The processor rejected a page's inputs (image and prompt), before the model saw them."""


def _answer(future: Future, result: EngineResult) -> None:
    """Set a page's result unless its caller has cancelled it meanwhile."""
    if not future.cancelled():
        try:
            future.set_result(result)
        except Exception:  # noqa: BLE001 - cancelled between the check and the set
            pass


def _until_eos(tokens: list[int], eos_id: int | None) -> list[int]:
    if eos_id is not None and eos_id in tokens:
        return tokens[: tokens.index(eos_id)]
    return tokens


def _resolve_dtype(requested: str, device: str):
    import torch

    if requested == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, requested)
