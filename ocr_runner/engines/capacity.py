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

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

GiB = 2**30
# Tile grids of width:height k:1 reach every backend's largest tile count (OCR-2: 6, v1: 9).
WIDE_PAGE_TILES = (1, 2, 3, 4, 6, 9)


@dataclass(frozen=True)
class BatchCapacity:
    rows: int
    reason: str
    row_bytes: int = 0  # the most one row may need: KV cache at full width plus its logits


def kv_bytes_per_token(net: Any, device: str) -> int:
    """Bytes the KV cache grows by per token of one row, read from a real forward (GQA, MLA, dtype included)."""
    import torch

    tokens = 4
    with torch.inference_mode():
        cache = net(input_ids=torch.ones(1, tokens, dtype=torch.long, device=device), use_cache=True).cache
    total = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    return total // tokens


def longest_prompt_tokens(prepare: Callable[[list[Any], list[str], Any], Any], modes: Iterable[Any],
                          tile_pixels: int, prompts: Iterable[str]) -> int:
    """The most prompt tokens (image tokens included) a page can take in any supported mode.

    Wide pages of k tiles side by side give each crop mode its largest tile grid. Custom prompts
    longer than the official ones are not covered; running out of memory then is handled by the
    batcher (rows are preempted and retried).
    """
    from PIL import Image

    prompts = list(prompts)
    longest = 0
    for mode in modes:
        widths = WIDE_PAGE_TILES if mode.crop_mode else (1,)
        for k in widths:
            image = Image.new("RGB", (k * tile_pixels, tile_pixels), "white")
            for prompt in prompts:
                inputs = prepare([image], [prompt], mode)
                longest = max(longest, int(inputs["input_ids"].shape[1]))
    return longest


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
    if usable_bytes is not None and usable_bytes < limit:
        limit = usable_bytes
        where = f"{usable_bytes / GiB:.1f} GiB this process can reach of {total_bytes / GiB:.1f} GiB"
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


def wide_page_png(tiles: int, tile_pixels: int) -> bytes:
    """A white page of ``tiles`` tiles side by side: the largest tile grid, for measuring the worst case."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (tiles * tile_pixels, tile_pixels), "white").save(buffer, format="PNG")
    return buffer.getvalue()
