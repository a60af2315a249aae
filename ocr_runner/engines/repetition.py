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
        """Ban, in row i of ``scores``, every token that would repeat an n-gram of ``histories[i]``
        (each row's last ``window`` tokens). One indexed write for the whole batch: on a GPU a write
        per row is a kernel launch per row and decode step."""
        n = self.ngram_size
        rows: list[int] = []
        columns: list[int] = []
        for row, ids in enumerate(histories):
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
            rows.extend([row] * len(banned))
            columns.extend(banned)
        if rows:
            scores[rows, columns] = -float("inf")
        return scores


def exempt_ids(tokenizer) -> list[int]:
    """Token ids of the table-cell tags, where the tokenizer has them as single tokens."""
    ids = []
    for token in TABLE_CELL_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.append(token_id)
    return ids
