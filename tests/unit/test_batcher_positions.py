"""The continuous batcher's bookkeeping against a stand-in model whose next token is the position id
it was fed: every row, whatever joins or leaves beside it, must be fed positions 0, 1, 2, ... with
no gap, the mask and cache must grow one column a step, and each row must see only its own tokens."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import pytest
import torch
from transformers.cache_utils import DynamicCache

from ocr_runner.engines.continuous import ContinuousBatcher, PageSequence

pytestmark = pytest.mark.unit
VOCAB = 4096  # larger than any position reached, so a token is its position


class PositionEcho(torch.nn.Module):
    """Logits pointing at the fed position id; checks that the mask covers exactly the cache plus the new tokens."""

    def forward(self, input_ids, attention_mask, position_ids, cache=None, use_cache=True, logits_to_keep=1, **_):
        cache = cache if cache is not None else DynamicCache()
        rows, new = input_ids.shape
        # Each cached column holds the position it was fed at, so a row's real columns can be read back.
        column = position_ids.float().view(rows, 1, new, 1)
        cache.update(column, column, 0)
        keys = cache.layers[0].keys[:, 0, :, 0]
        assert attention_mask.shape == keys.shape
        for row in range(rows):  # a row's real columns: its own positions 0, 1, 2, ... in order
            real = keys[row][attention_mask[row].bool()].long().tolist()
            assert real == list(range(len(real))), real
        logits = torch.nn.functional.one_hot(position_ids[:, -1:] % VOCAB, VOCAB).float()
        return SimpleNamespace(logits=logits, cache=cache)


def page(prompt_length: int, limit: int) -> PageSequence:
    ids = torch.arange(prompt_length).view(1, -1) + 10_000  # prompt token ids never collide with positions
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return PageSequence(inputs, "mode", limit, limit, ids[0].tolist(), Future())


def encode(group: list[PageSequence]) -> dict:
    width = max(s.inputs["input_ids"].shape[1] for s in group)
    pad = lambda t, v: torch.nn.functional.pad(t, (width - t.shape[1], 0), value=v)  # noqa: E731
    return {
        "input_ids": torch.cat([pad(s.inputs["input_ids"], 0) for s in group]),
        "attention_mask": torch.cat([pad(s.inputs["attention_mask"], 0) for s in group]),
    }


@pytest.mark.parametrize("kv_room", [0, 3], ids=["transformers-cache", "cache-with-room"])
def test_every_row_is_fed_consecutive_positions_while_rows_join_and_leave(kv_room):
    net = PositionEcho()
    finished: dict[int, list[int]] = {}

    class Pages:  # the batcher's PageHandler
        encode = staticmethod(encode)

        def finish(self, sequence: PageSequence, _elapsed_ms: float) -> None:
            finished[id(sequence)] = list(sequence.generated)
            sequence.future.set_result(None)

        def fail(self, sequence: PageSequence, reason: str) -> None:
            sequence.future.set_exception(RuntimeError(reason))

        def on_step(self, rows: int, waiting: int) -> None:
            pass

    batcher = ContinuousBatcher(net, Pages(), eos_id=None, max_rows=3, max_waiting=64, max_admit=2, kv_room=kv_room)
    # Prompts of different lengths and outputs of different lengths: rows join a running batch
    # left-padded to another row's width, and finished rows leave it.
    pages = [page(length, limit) for length, limit in [(5, 9), (12, 3), (3, 14), (20, 6), (7, 1), (9, 11)]]
    batcher.reserve([p.future for p in pages])
    for p in pages:
        batcher.enqueue(p)
    for p in pages:
        p.future.result(timeout=30)
    for p in pages:
        length = len(p.prompt_ids)
        # The prefill's last position predicts the first token; each step then feeds the next position.
        assert finished[id(p)] == list(range(length - 1, length - 1 + p.limit)), (length, p.limit)
