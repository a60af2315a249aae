import pytest
import torch

from ocr_runner.engines.repetition import WindowedNoRepeatNGram

pytestmark = pytest.mark.unit


def banned(processor, ids, vocab=20):
    scores = processor(torch.tensor([ids]), torch.zeros(1, vocab))
    return {i for i in range(vocab) if scores[0, i] == -float("inf")}


def test_bans_the_token_that_would_repeat_an_ngram_in_the_window():
    guard = WindowedNoRepeatNGram(ngram_size=3, window=10)
    # "5 6 7" happened; now the sequence ends in "5 6": 7 would repeat the trigram.
    assert banned(guard, [1, 5, 6, 7, 2, 5, 6]) == {7}


def test_repeats_older_than_the_window_are_allowed():
    guard = WindowedNoRepeatNGram(ngram_size=3, window=4)
    assert banned(guard, [5, 6, 7, 1, 2, 5, 6]) == set()


def test_table_cell_tokens_are_exempt():
    guard = WindowedNoRepeatNGram(ngram_size=2, window=10, exempt_token_ids=[9])
    assert banned(guard, [3, 9, 3]) == set()  # "3 9" repeating is fine: 9 is <td>
    assert banned(guard, [3, 4, 3]) == {4}


def test_rows_are_independent():
    guard = WindowedNoRepeatNGram(ngram_size=2, window=10)
    scores = guard(torch.tensor([[1, 2, 1], [3, 4, 5]]), torch.zeros(2, 8))
    assert scores[0, 2] == -float("inf") and not torch.isinf(scores[1]).any()


def test_block_takes_histories_of_different_lengths_in_one_write():
    guard = WindowedNoRepeatNGram(ngram_size=2, window=10)
    histories = [[1, 2, 1, 3, 1], [4], [5, 6, 7, 5]]  # row 0: 2 and 3 followed 1; row 1: too short
    scores = guard.block(histories, torch.zeros(3, 8))
    assert {(r, c) for r, c in torch.isinf(scores).nonzero().tolist()} == {(0, 2), (0, 3), (2, 6)}
