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


def test_a_roomy_layer_holds_what_a_dynamic_layer_does_and_writes_steps_in_place():
    from transformers.cache_utils import DynamicLayer

    from ocr_runner.engines.kv_rows import RoomyLayer

    generator = torch.Generator().manual_seed(5)
    start = torch.rand(2, HEADS, 4, DIM, generator=generator)
    plain, roomy = DynamicLayer(), RoomyLayer(start, start + 1, room=3)
    plain.update(start, start + 1)
    buffers = []
    for step in range(7):  # past the room: the buffer grows once and steps write in place again
        new = torch.rand(plain.keys.shape[0], HEADS, 1, DIM, generator=generator)
        want = plain.update(new, new + 1)
        got = roomy.update(new, new + 1)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        buffers.append(roomy.keys.untyped_storage().data_ptr())
        if step == 3:  # row surgery assigns the tensors: the next step copies them into a new buffer
            plain.keys, plain.values = plain.keys[[1]], plain.values[[1]]
            roomy.keys, roomy.values = roomy.keys[[1]], roomy.values[[1]]
    assert roomy.get_seq_length() == plain.get_seq_length() == 11
    # Steps 0-2 fill the room in place; step 3 grows; step 4 re-stores after the surgery; 5-6 in place.
    assert buffers[0] == buffers[1] == buffers[2] != buffers[3] != buffers[4] == buffers[5] == buffers[6]


def test_rows_with_room_join_and_keep_like_plain_rows():
    kv, real = rows_of([5, 2], seed=6)
    roomy = KvRows(kv.cache, kv.mask, room=4)
    newcomers, new_real = rows_of([7], seed=7)
    joined = roomy.join(newcomers)
    assert joined.room == 4
    kept = joined.keep([2, 0])
    for row, expected in zip(range(2), [new_real[0], real[0]]):
        for got, want in zip(real_keys(kept, row), expected):
            assert torch.equal(got, want)


def test_row_surgery_lets_the_old_buffer_go():
    import weakref

    from ocr_runner.engines.kv_rows import RoomyLayer

    start = torch.rand(3, HEADS, 4, DIM)
    layer = RoomyLayer(start, start + 1, room=8)
    buffer = weakref.ref(layer._buffers[0])
    layer.keys, layer.values = layer.keys[[0, 2]], layer.values[[0, 2]]  # as KvRows.keep assigns them
    assert buffer() is None  # not held beside the new tensors until the next step
    keys, _ = layer.update(torch.ones(2, HEADS, 1, DIM), torch.ones(2, HEADS, 1, DIM))
    assert torch.equal(keys[:, :, :4], start[[0, 2]]) and bool((keys[:, :, 4] == 1).all())
