"""A failing batch is halved until the item at fault stands alone; the others still succeed."""

from __future__ import annotations

import pytest
import torch

from ocr_runner.engines.failures import failure_reason, is_out_of_memory, split_on_failure

pytestmark = pytest.mark.unit


def test_one_bad_item_fails_alone_and_the_others_succeed():
    calls: list[list[int]] = []
    done: list[tuple[list[int], list[int]]] = []
    failed: list[tuple[int, str]] = []

    def run(items):
        calls.append(list(items))
        if 5 in items:
            raise ValueError("bad item")
        return [i * 10 for i in items]

    split_on_failure(list(range(8)), run, lambda items, out: done.append((list(items), out)),
                     lambda item, exc: failed.append((item, str(exc))))
    assert failed == [(5, "bad item")]
    assert sorted(i for items, _ in done for i in items) == [0, 1, 2, 3, 4, 6, 7]
    assert all(out == [i * 10 for i in items] for items, out in done)
    # Halves, in order: 8 -> 4 + 4 -> (2 + 2) -> 1 + 1; the good first half is run once.
    assert calls == [list(range(8)), [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4], [5], [6, 7]]


def test_out_of_memory_halves_and_empties_the_cache(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    sizes: list[int] = []

    def run(items):  # only batches of more than two fit
        sizes.append(len(items))
        if len(items) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return list(items)

    done: list[list[str]] = []
    split_on_failure(list("abcde"), run, lambda items, out: done.append(out), lambda item, exc: pytest.fail(item))
    assert done == [["a", "b"], ["c"], ["d", "e"]]
    assert sizes == [5, 2, 3, 1, 2]
    assert len(emptied) == 2  # one per failed attempt


def test_a_lone_failure_is_reported_with_its_exception():
    error = torch.OutOfMemoryError("CUDA out of memory")
    seen = []
    split_on_failure(["x"], lambda items: (_ for _ in ()).throw(error), lambda *a: pytest.fail("no outcome"),
                     lambda item, exc: seen.append((item, exc)))
    assert seen == [("x", error)]
    assert is_out_of_memory(error) and failure_reason(error) == "out of GPU memory"
    assert failure_reason(ValueError("no")) == "ValueError: no"


def test_what_the_success_callback_raises_is_not_a_batch_failure():
    def done(items, out):
        raise KeyError("bookkeeping")

    with pytest.raises(KeyError):
        split_on_failure([1, 2], lambda items: items, done, lambda item, exc: pytest.fail("split"))
