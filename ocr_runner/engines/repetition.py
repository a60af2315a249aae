"""The repetition guard DeepSeek-OCR's own serving uses: a windowed no-repeat n-gram block.

transformers' ``no_repeat_ngram_size`` bans any n-gram repeated anywhere in the sequence,
which breaks long tables whose rows legitimately repeat. This one only looks at the last
``window`` tokens and never bans the table-cell tags, so tables survive while a model
stuck in a loop is pushed out of it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import LogitsProcessor

TABLE_CELL_TOKENS = ("<td>", "</td>")


class WindowedNoRepeatNGram(LogitsProcessor):
    def __init__(self, ngram_size: int, window: int, exempt_token_ids: Iterable[int] = ()) -> None:
        if ngram_size < 2 or window < ngram_size:
            raise ValueError("need ngram_size >= 2 and window >= ngram_size")
        self.ngram_size = ngram_size
        self.window = window
        self.exempt = frozenset(exempt_token_ids)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return self.block(input_ids[:, -self.window :].tolist(), scores)

    def block(self, histories: list[list[int]], scores: torch.FloatTensor) -> torch.FloatTensor:
        self.ban(histories, scores)
        return scores

    def ban(self, histories: list[list[int]], scores: torch.FloatTensor, rows: list[int] | None = None) -> list[int]:
        """Ban, in row ``rows[i]`` of ``scores`` (row i by default), every token that would repeat an n-gram of
        ``histories[i]`` (that row's last ``window`` tokens). Returns the rows where the guard intervened: their
        best-scored token was banned. One indexed write for the whole batch: on a GPU a write per row is a
        kernel launch per row and decode step."""
        n = self.ngram_size
        targets = rows if rows is not None else range(len(histories))
        banned_rows: list[tuple[int, set[int]]] = []
        for row, ids in zip(targets, histories):
            if len(ids) < n:
                continue
            prefix = ids[-(n - 1) :]
            last = prefix[-1]
            banned = {
                ids[start + n - 1]
                for start in range(len(ids) - n + 1)
                if ids[start + n - 2] == last and ids[start : start + n - 1] == prefix
            }
            banned -= self.exempt
            if banned:
                banned_rows.append((row, banned))
        if not banned_rows:
            return []
        best = scores[[row for row, _ in banned_rows]].argmax(dim=-1).tolist()
        scores[[row for row, b in banned_rows for _ in b], [t for _, b in banned_rows for t in b]] = -float("inf")
        return [row for (row, banned), top in zip(banned_rows, best) if top in banned]


def repeating_tail(tokens: list[int], min_repeats: int = 3, min_span: int = 16,
                   max_period: int = 256) -> tuple[int, int] | None:
    """Where ``tokens`` ends in one block repeated back to back: (start of the run, block length), the longest
    such run of at least ``min_repeats`` blocks and ``min_span`` tokens; None when the end does not repeat."""
    n = len(tokens)
    found: tuple[int, int] | None = None
    for period in range(1, min(max_period, n // min_repeats) + 1):
        run = 0
        while run < n - period and tokens[n - 1 - run] == tokens[n - 1 - run - period]:
            run += 1
        span = run + period
        if span >= period * min_repeats and span >= min_span and (found is None or n - span < found[0]):
            found = (n - span, period)
    return found


def exempt_ids(tokenizer) -> list[int]:
    """Token ids of the table-cell tags, where the tokenizer has them as single tokens."""
    ids = []
    for token in TABLE_CELL_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.append(token_id)
    return ids
