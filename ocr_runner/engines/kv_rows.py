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


class RoomyLayer(DynamicLayer):
    """A dynamic layer whose keys and values sit in buffers with room for ``room`` more tokens.

    ``DynamicLayer`` copies the whole layer (``torch.cat``) on every decode step; here a step
    writes its column in place and the buffer grows by ``room`` columns when full. ``keys`` and
    ``values`` are views of the filled part. Assigning them, as the row surgery below does, lets
    the buffer go at once (it must not be held beside the new tensors: that would be the whole
    cache twice); the next update copies them into a fresh buffer.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        super().__init__()
        self.room = room
        self.device = keys.device
        self.is_initialized = True
        self._keys, self._values = keys, values
        self._reserve(keys.shape[-2] + room)

    @property
    def keys(self) -> torch.Tensor | None:
        return self._keys

    @keys.setter
    def keys(self, value: torch.Tensor | None) -> None:
        self._keys, self._buffers = value, None

    @property
    def values(self) -> torch.Tensor | None:
        return self._values

    @values.setter
    def values(self, value: torch.Tensor | None) -> None:
        self._values, self._buffers = value, None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        filled = self._keys.shape[-2]
        end = filled + key_states.shape[-2]
        if self._buffers is None or end > self._buffers[0].shape[-2]:
            self._reserve(end + self.room)
        keys, values = self._buffers
        keys[:, :, filled:end] = key_states
        values[:, :, filled:end] = value_states
        self._keys, self._values = keys[:, :, :end], values[:, :, :end]
        return self._keys, self._values

    def _reserve(self, capacity: int) -> None:
        """Fresh buffers of ``capacity`` columns holding the current keys and values."""
        filled = self._keys.shape[-2]
        keys = self._keys.new_empty(*self._keys.shape[:2], capacity, self._keys.shape[-1])
        values = self._values.new_empty(*self._values.shape[:2], capacity, self._values.shape[-1])
        keys[:, :, :filled] = self._keys
        values[:, :, :filled] = self._values
        self._buffers = (keys, values)
        self._keys, self._values = keys[:, :, :filled], values[:, :, :filled]


@dataclass
class KvRows:
    cache: DynamicCache
    mask: torch.Tensor  # (rows, length): 1 where a cached column is a real token of that row
    room: int = 0  # >0: layers keep room for this many more tokens (RoomyLayer) instead of copying every step

    def __post_init__(self) -> None:
        for index, layer in enumerate(self.cache.layers):
            # Sliding-window and quantised layers keep state that row surgery would break.
            if type(layer) not in (DynamicLayer, RoomyLayer):
                raise TypeError(f"continuous batching needs plain dynamic cache layers, not {type(layer).__name__}")
            if self.room and type(layer) is DynamicLayer and layer.is_initialized:
                self.cache.layers[index] = RoomyLayer(layer.keys, layer.values, self.room)

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
        return KvRows(mine.cache, torch.cat([mine.mask, theirs.mask], dim=0), self.room)

    def keep(self, rows: list[int]) -> KvRows:
        """Only ``rows``, in that order, without the leading columns none of them uses."""
        index = torch.tensor(rows, device=self.mask.device, dtype=torch.long)
        mask = self.mask.index_select(0, index)
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if used.numel() else mask.shape[1]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]
        return KvRows(self.cache, mask[:, start:], self.room)

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
        return KvRows(self.cache, torch.nn.functional.pad(self.mask, (extra, 0), value=0), self.room)
