"""How many pages one continuous decode batch may hold on this GPU.

The running batch's KV cache is dense and left-padded, so every row is as wide as the longest
history in it: rows x (longest prompt + MAX_NEW_TOKENS) x bytes per cached token, at worst.
Everything else the engine holds (weights, one prefill group's activations, a vision-encoder
chunk) is measured once at start-up. MAX_BATCH_SIZE is the cap; on CUDA the engine lowers it to
the rows that fit in GPU_MEMORY_UTILIZATION of the card, so a large cap on a small card means
fewer rows, not an out-of-memory error halfway through a page. The share left over covers the
transient copies of one layer's keys or values that joining, dropping and appending make (for
OCR-2, 1/24 of the cache) and the allocator's fragmentation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .continuous import prefill

if TYPE_CHECKING:
    from .deepseek import DeepseekEngine

log = logging.getLogger(__name__)

GiB = 2**30
# Pages of k:1 and 1:k tiles reach every backend's largest tile grid (OCR-2: 6 tiles, v1: 9).
TILE_COUNTS = (1, 2, 3, 4, 6, 9)


@dataclass(frozen=True)
class BatchCapacity:
    rows: int
    reason: str
    row_bytes: int = 0  # the most one row may need: KV cache at full width plus its logits


@dataclass(frozen=True)
class WorstPage:
    tokens: int  # prompt tokens, image tokens included
    image: Any
    prompt: str


def kv_bytes_per_token(net: Any, device: str) -> int:
    """Bytes the KV cache grows by per token of one row, read from a real forward (GQA, MLA, dtype included)."""
    import torch

    tokens = 4
    with torch.inference_mode():
        cache = net(input_ids=torch.ones(1, tokens, dtype=torch.long, device=device), use_cache=True).cache
    total = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    return total // tokens


def worst_page(prepare: Callable[[list[Any], list[str], Any], Any], modes: Iterable[Any],
               tile_pixels: int, prompts: Iterable[str]) -> WorstPage:
    """The most prompt tokens (image tokens included) a page can take in any supported mode, with
    that page and prompt.

    Pages of k tiles side by side, or stacked, give each crop mode its largest tile grid (v1 adds
    a newline token per row of patches, so stacked tiles cost a little more). Custom prompts longer
    than the official ones are not covered; running out of memory then is handled by the batcher
    (rows are preempted and retried).
    """
    from PIL import Image

    prompts = list(prompts)
    worst = WorstPage(0, None, "")
    for mode in modes:
        shapes = [(k, 1) for k in TILE_COUNTS] + [(1, k) for k in TILE_COUNTS] if mode.crop_mode else [(1, 1)]
        for width, height in shapes:
            image = Image.new("RGB", (width * tile_pixels, height * tile_pixels), "white")
            for prompt in prompts:
                tokens = int(prepare([image], [prompt], mode)["input_ids"].shape[1])
                if tokens > worst.tokens:
                    worst = WorstPage(tokens, image, prompt)
    return worst


def rows_that_fit(
    cap: int, total_bytes: int, reserved_bytes: int, row_bytes: int, utilization: float, row_tokens: int,
    usable_bytes: int | None = None,
) -> BatchCapacity:
    """The rows that fit in ``utilization`` of the card beside what is already reserved, at most ``cap``.

    ``usable_bytes``, when known, is what this process can still reach (the card's free memory plus
    what its allocator holds): less than the share when other processes use the card.
    """
    limit = utilization * total_bytes
    where = f"{utilization:.0%} of {total_bytes / GiB:.1f} GiB"
    headroom = (1 - utilization) * total_bytes  # fragmentation, transient copies, what the allocator does not see
    if usable_bytes is not None and usable_bytes - headroom < limit:
        limit = usable_bytes - headroom
        where = (f"{usable_bytes / GiB:.1f} GiB this process can reach of {total_bytes / GiB:.1f} GiB, less "
                 f"{headroom / GiB:.1f} GiB headroom")
    budget = limit - reserved_bytes
    fit = int(budget // row_bytes) if budget > 0 else 0
    where += (
        f", {reserved_bytes / GiB:.1f} GiB of it for weights and activations,"
        f" {row_bytes / 2**20:.0f} MiB a row of {row_tokens:,} tokens"
    )
    if fit >= cap:
        return BatchCapacity(cap, f"MAX_BATCH_SIZE ({fit} rows would fit in GPU memory: {where})", row_bytes)
    if fit < 1:
        return BatchCapacity(1, f"GPU memory: not even one row of {row_tokens:,} tokens fits ({where}); "
                                "lower MAX_NEW_TOKENS or raise GPU_MEMORY_UTILIZATION", row_bytes)
    return BatchCapacity(fit, f"GPU memory: {where}", row_bytes)


def fit_batch(engine: DeepseekEngine, total_bytes: int, reserved_bytes: int,
              usable_bytes: int | None = None) -> BatchCapacity:
    """The engine's decode rows that fit beside ``reserved_bytes`` on a card of ``total_bytes`` (of
    which this process reaches ``usable_bytes``), each row as wide as the longest prompt plus MAX_NEW_TOKENS."""
    import torch

    settings = engine.settings
    row_tokens = engine.worst_page.tokens + settings.max_new_tokens + engine.kv_cache_room
    vocab = engine.net.get_output_embeddings().weight.shape[0]
    # Per row and step: the logits in the model's dtype and the float scores picked from.
    logits_bytes = vocab * (torch.finfo(engine.torch_dtype).bits // 8 + 4)
    row_bytes = kv_bytes_per_token(engine.net, engine.device) * row_tokens + logits_bytes
    return rows_that_fit(settings.max_batch_size, total_bytes, reserved_bytes, row_bytes,
                         settings.gpu_memory_utilization, row_tokens, usable_bytes)


def fit_batch_to_gpu_memory(engine: DeepseekEngine) -> BatchCapacity:
    """Measure what a full prefill group of the worst page needs beside the weights, in every mode,
    then fit rows. Runs at start-up, before any request: the batcher's thread is idle meanwhile."""
    import torch

    device = torch.device(engine.device)
    group = min(engine.settings.prefill_batch_pages, engine.settings.max_batch_size)
    worst = engine.worst_page
    peak = 0
    for mode in engine.supported_modes:
        inputs = engine.inputs.prepare([worst.image] * group, [worst.prompt] * group, mode)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            output = prefill(engine.net, engine.inputs.to_device(inputs))
        torch.cuda.synchronize(device)
        peak = max(peak, torch.cuda.max_memory_allocated(device))
        del output
    free, total = torch.cuda.mem_get_info(device)
    # Another process on the card leaves less than the share: free memory plus what our allocator holds.
    usable = free + torch.cuda.memory_reserved(device)
    return fit_batch(engine, total, peak, usable)
