"""Row surgery on a KV cache: joining newcomers and dropping finished rows keep each row's own tokens."""

import pytest
import torch
from transformers.cache_utils import DynamicCache

from ocr_runner.engines.kv_rows import KvRows

pytestmark = pytest.mark.unit
LAYERS, HEADS, DIM = 2, 2, 3


def rows_of(lengths: list[int], seed: int) -> tuple[KvRows, list[list[torch.Tensor]]]:
    """Left-padded rows of the given real lengths, and each row's real keys per layer."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    cache, real = DynamicCache(), [[] for _ in lengths]
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for layer in range(LAYERS):
        keys = torch.zeros(len(lengths), HEADS, width, DIM)
        for row, length in enumerate(lengths):
            keys[row, :, width - length :] = torch.rand(HEADS, length, DIM, generator=generator)
            real[row].append(keys[row, :, width - length :].clone())
            mask[row, width - length :] = 1
        cache.update(keys, keys + 100, layer)
    return KvRows(cache, mask), real


def real_keys(kv: KvRows, row: int) -> list[torch.Tensor]:
    used = kv.mask[row].bool()
    return [layer.keys[row][:, used] for layer in kv.cache.layers]


def test_join_pads_the_shorter_side_on_the_left_and_keeps_every_row():
    running, running_real = rows_of([5, 2], seed=1)
    newcomers, new_real = rows_of([7], seed=2)
    joined = running.join(newcomers)
    assert joined.rows == 3 and joined.mask.shape == (3, 7)
    assert joined.mask[0].tolist() == [0, 0, 1, 1, 1, 1, 1]
    for row, expected in enumerate(running_real + new_real):
        for got, want in zip(real_keys(joined, row), expected):
            assert torch.equal(got, want)
    # Values travel with their keys.
    for layer in joined.cache.layers:
        assert torch.equal(layer.values[joined.mask.bool()[:, None, :].expand(-1, HEADS, -1)],
                           layer.keys[joined.mask.bool()[:, None, :].expand(-1, HEADS, -1)] + 100)


def test_keep_drops_rows_and_the_columns_only_they_used():
    kv, real = rows_of([6, 2, 3], seed=3)
    kept = kv.keep([2, 1])
    assert kept.rows == 2 and kept.mask.shape == (2, 3)  # the 6-token row was the only one using 3 columns
    for row, original in enumerate([2, 1]):
        for got, want in zip(real_keys(kept, row), real[original]):
            assert torch.equal(got, want)
    assert all(layer.keys.shape[2] == 3 for layer in kept.cache.layers)


def test_keep_nothing_and_extend_mask():
    kv, _ = rows_of([2, 4], seed=4)
    assert kv.extend_mask().tolist() == [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert kv.keep([]).rows == 0


def test_refuses_cache_layers_it_cannot_cut():
    from transformers.cache_utils import DynamicSlidingWindowLayer

    cache = DynamicCache()
    cache.layers.append(DynamicSlidingWindowLayer(sliding_window=4))
    with pytest.raises(TypeError, match="DynamicSlidingWindowLayer"):
        KvRows(cache, torch.ones(1, 1, dtype=torch.long))
