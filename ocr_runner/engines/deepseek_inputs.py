"""Model inputs for the DeepSeek engine: page images and prompts in, tensors on the device out.

Kept apart from batching and generation because it is the CPU-heavy part (decoding, resizing and
tiling) and the part that must stay thread-safe: preparation is spread over a pool of threads,
each with its own copy of the backend's processor, and the vision encoder runs a few pages at a
time so a large batch cannot exhaust GPU memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..modes import ResolutionMode
from ..settings import Settings

# Below this many pages a thread costs more than it saves.
MIN_PAGES_PER_THREAD = 4


class PreparationFailed(Exception):
    """The processor rejected a page's inputs (image and prompt), before the model saw them."""


class PageInputs:
    """Prepares pages for one backend and model: on the CPU (``prepare``), then on the device (``to_device``)."""

    def __init__(self, backend: Any, net: Any, settings: Callable[[], Settings], *, device: str, dtype: Any,
                 pad_id: int) -> None:
        self.backend, self.net = backend, net
        self._settings = settings  # read at every call: PREPROCESS_THREADS and VISION_BATCH_PAGES may change
        self.device, self.dtype, self.pad_id = device, dtype, pad_id
        self.pool = ThreadPoolExecutor(settings().preprocess_threads, thread_name_prefix="preprocess")
        self._thread_state = threading.local()

    def thread_backend(self):
        """This thread's copy of the backend: a fast tokenizer must not be shared across threads."""
        backend = getattr(self._thread_state, "backend", None)
        if backend is None:
            backend = self._thread_state.backend = self.backend.for_thread()
        return backend

    def prepare(self, images: list[Any], prompts: list[str], mode: ResolutionMode):
        """The backend's input preparation over the batch, split across threads (resizing and tiling
        dominate on CPU: ~90 ms a page, a third of a 64-page batch on an H100 host when run in one thread).
        A rejection by the processor is raised as ``PreparationFailed``: the input's fault, not the model's.
        """
        chunk = max(MIN_PAGES_PER_THREAD, -(-len(images) // self._settings().preprocess_threads))
        spans = [range(start, min(start + chunk, len(images))) for start in range(0, len(images), chunk)]

        def run(span: range):
            return self.thread_backend().prepare_inputs([images[i] for i in span], [prompts[i] for i in span], mode)

        try:
            if len(spans) == 1:
                return run(spans[0])
            return concat_left_padded(list(self.pool.map(run, spans)), self.pad_id)
        except Exception as exc:  # noqa: BLE001
            raise PreparationFailed(f"{exc.__class__.__name__}: {exc}") from exc

    def to_device(self, inputs) -> dict[str, Any]:
        """Prepared inputs on the device, with the vision encoder's features in place of the pixels."""
        model_inputs = dict(inputs.to(self.device, dtype=self.dtype))
        model_inputs["mm_encoder_outputs"] = {"image": self.encode_images(model_inputs)}
        return model_inputs

    def encode_images(self, inputs: dict[str, Any]):
        """Run the vision encoder over a few pages at a time (pops the pixels from ``inputs``).

        SAM's global attention builds a relative-position bias per view (about 0.2 GiB each in
        bf16); encoding a batch of 64 pages (448 views) at once needs more than an 80 GB card.
        """
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        pixel_values = inputs.pop("pixel_values")
        local = inputs.pop("pixel_values_local", None)
        counts = inputs.pop("num_local_patches", None)
        grids = inputs.get("patches_grid")  # DeepSeek-OCR v1 only: its tile layout needs the grid
        counts = [int(c) for c in counts] if counts is not None else [0] * pixel_values.shape[0]
        step = self._settings().vision_batch_pages
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


def concat_left_padded(parts: list[Any], pad_id: int):
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
