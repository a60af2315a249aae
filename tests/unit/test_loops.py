"""Loop detection, the retry decision and the cut, on token lists (no model)."""

import pytest
import torch

from ocr_runner.client import repetition_note
from ocr_runner.engines.loops import GUARD_HITS, Attempt, LoopHandling, trim
from ocr_runner.engines.repetition import WindowedNoRepeatNGram, repeating_tail
from ocr_runner.settings import load_settings

pytestmark = pytest.mark.unit

BLOCK = [7, 8, 9, 10, 11]


def handling(**updates) -> LoopHandling:
    settings = load_settings(engine="deepseek", **updates)
    return LoopHandling(lambda: settings, exempt=[])


def test_a_repeating_tail_is_found_where_it_starts():
    tokens = [1, 2, 3] + BLOCK * 5
    assert repeating_tail(tokens) == (3, 5)
    assert repeating_tail([4, 4, 4, 4, 1, 2]) is None  # the end does not repeat
    assert repeating_tail([1, 2, 3] + BLOCK * 2) is None  # two copies are not a loop
    assert repeating_tail([5] * 10) is None  # shorter than the minimum span (16)
    assert repeating_tail([5] * 16) == (0, 1)


def test_trim_keeps_one_copy_of_the_block():
    assert trim([1, 2, 3] + BLOCK * 5 + BLOCK[:2]) == ([1, 2, 3, *BLOCK], 22)
    assert trim([1, 2, 3]) == ([1, 2, 3], 0)


def test_what_counts_as_looping():
    loops = handling()
    looping = [1, 2, 3] + BLOCK * 5
    assert loops.needs_retry(Attempt(looping, limit=len(looping)))
    assert not loops.needs_retry(Attempt(looping, limit=len(looping) + 1))  # it ended by itself
    assert loops.needs_retry(Attempt([1, 2], limit=100, guard_hits=GUARD_HITS))
    assert not loops.needs_retry(Attempt([1, 2], limit=100, guard_hits=GUARD_HITS - 1))
    assert not handling(min_new_tokens=5).needs_retry(Attempt(looping, limit=len(looping)))  # forced lengths
    assert not handling(repetition_retry=False).needs_retry(Attempt(looping, limit=len(looping)))


def test_the_outcome_of_each_case():
    loops = handling()
    looping = Attempt([1, 2, 3] + BLOCK * 5, limit=28)
    clean = Attempt([1, 2, 3, 4], limit=28)
    assert loops.outcome(clean, None) == ([1, 2, 3, 4], None)  # untouched
    tokens, report = loops.outcome(looping, clean)
    assert tokens == [1, 2, 3, 4] and report.retried and report.recovered and not report.trimmed
    assert report.how == "greedy again with a stricter guard: no repeated 10-gram in the last 270 tokens"
    tokens, report = loops.outcome(looping, looping)
    assert tokens == [1, 2, 3, *BLOCK] and report.retried and report.trimmed and report.trimmed_tokens == 20


def test_the_guard_says_where_it_intervened():
    guard = WindowedNoRepeatNGram(ngram_size=2, window=10)
    scores = torch.zeros(3, 8)
    scores[0, 2] = 5.0  # row 0 wants 2, which would repeat "1 2": banned, an intervention
    scores[1, 6] = 5.0  # row 1 wants 6; 4 is banned but was not its choice
    hits = guard.ban([[1, 2, 1], [3, 4, 3], [5]], scores)
    assert hits == [0]
    assert scores[0, 2] == scores[1, 4] == -float("inf")
    assert guard.ban([[1, 2, 1]], torch.zeros(4, 8).index_fill_(1, torch.tensor([2]), 1.0), rows=[3]) == [3]


def test_the_cli_note():
    answer = {"metadata": {"repetition": {"pages": [2], "reason": "r", "retried": True, "how": "h",
                                          "trimmed_pages": [2]}}}
    assert repetition_note(answer) == "repetition loop on page 2: r; retried (h); repeated tail cut on page 2"
    assert repetition_note({"metadata": {}}) is None
