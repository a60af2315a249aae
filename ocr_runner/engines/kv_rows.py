"""The running batch's key/value cache as rows that can be joined and dropped between decode steps.

A transformers ``DynamicCache`` holds, per layer, keys and values shaped (batch, heads, length, dim).
Rows are left-padded: every row's newest token sits in the last column, and the attention mask
marks the padding. Joining newcomers pads the shorter side on the left; dropping finished rows
also drops the leading columns that only padding still uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


@dataclass
class KvRows:
    cache: DynamicCache
    mask: torch.Tensor  # (rows, length): 1 where a cached column is a real token of that row

    def __post_init__(self) -> None:
        for layer in self.cache.layers:
            # Sliding-window and quantised layers keep state that row surgery would break.
            if type(layer) is not DynamicLayer:
                raise TypeError(f"continuous batching needs plain dynamic cache layers, not {type(layer).__name__}")

    @property
    def rows(self) -> int:
        return self.mask.shape[0]

    def join(self, other: KvRows) -> KvRows:
        """These rows followed by ``other``'s, both left-padded to the longer length."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        mine, theirs = self._padded_to(width), other._padded_to(width)
        for layer, incoming in zip(mine.cache.layers, theirs.cache.layers):
            layer.keys = torch.cat([layer.keys, incoming.keys], dim=0)
            layer.values = torch.cat([layer.values, incoming.values], dim=0)
        return KvRows(mine.cache, torch.cat([mine.mask, theirs.mask], dim=0))

    def keep(self, rows: list[int]) -> KvRows:
        """Only ``rows``, in that order, without the leading columns none of them uses."""
        index = torch.tensor(rows, device=self.mask.device, dtype=torch.long)
        mask = self.mask.index_select(0, index)
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if used.numel() else mask.shape[1]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]
        return KvRows(self.cache, mask[:, start:])

    def extend_mask(self) -> torch.Tensor:
        """The mask with one more real column, for the token the next step appends to every row."""
        self.mask = torch.nn.functional.pad(self.mask, (0, 1), value=1)
        return self.mask

    def _padded_to(self, width: int) -> KvRows:
        extra = width - self.mask.shape[1]
        if extra == 0:
            return self
        for layer in self.cache.layers:
            layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, extra, 0))
            layer.values = torch.nn.functional.pad(layer.values, (0, 0, extra, 0))
        return KvRows(self.cache, torch.nn.functional.pad(self.mask, (extra, 0), value=0))
