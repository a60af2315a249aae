"""Iteration-level (continuous) batching: pages join and leave the running batch between decode steps.

One thread owns the model. Before each decode step it admits waiting pages (vision encoder and
prefill for the newcomers only, their cache joined to the running one) and after it returns every
page that has finished, so a 200-token receipt never waits for a 2,000-token page beside it and
the freed row goes to the next page at once. Decoding is greedy with the same rules as the static
path (minimum length, repetition guard), so a page reads the same whatever runs beside it.

transformers' own continuous-batching manager takes token ids only, not images, so this is a
small loop over the model's forward with a row-addressable KV cache (``kv_rows``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

import torch

from .base import EngineBusy
from .failures import failure_reason, is_out_of_memory, split_on_failure
from .kv_rows import KvRows
from .sequence import PageHandler, PageSequence

__all__ = ["ContinuousBatcher", "PageHandler", "PageSequence", "prefill"]

log = logging.getLogger(__name__)


class ContinuousBatcher:
    """Admit, step, retire, for the pages ``pages`` encodes and answers."""

    def __init__(
        self,
        net: Any,
        pages: PageHandler,
        *,
        eos_id: int | None,
        max_rows: int,
        max_waiting: int,
        max_admit: int | None = None,
        kv_room: int = 0,
        guard: Any = None,
    ) -> None:
        self._net, self._pages = net, pages
        self._eos_id = eos_id
        self.max_rows = max_rows  # read at every admission, so it may be changed while running
        # Newcomers prefilled together at most: bounds prefill activations and the pause it puts on decoding.
        self.max_admit = max_admit or max_rows
        self.kv_room = kv_room  # >0: the cache grows in place, this many tokens at a time (kv_rows.RoomyLayer)
        self._max_waiting = max_waiting
        self._guard = guard  # a ``WindowedNoRepeatNGram`` (or None); a page may bring its own (``PageSequence.guard``)
        self._cond = threading.Condition()
        self._pending: deque[PageSequence] = deque()
        self._holding: set[Future] = set()  # pages accepted and not yet decoding, preparation included
        self._active: list[PageSequence] = []
        self._kv: KvRows | None = None
        self._hold_admission = False  # set after running out of memory; lifted when a row finishes
        self._thread = threading.Thread(target=self._run, name="continuous-batcher", daemon=True)
        self._thread.start()

    # -- producer side (any thread) ------------------------------------------------------------

    def reserve(self, futures: list[Future]) -> None:
        """Claim queue places for pages about to be prepared, so overload is refused up front.

        A place is given back when its page starts decoding or its future is done for any other
        reason (answered with an error, or cancelled by a caller that left).
        """
        with self._cond:
            if self._holding and len(self._holding) + len(futures) > self._max_waiting:
                raise EngineBusy(f"{len(self._holding)} pages are already waiting for the engine")
            self._holding.update(futures)
        for future in futures:
            future.add_done_callback(self._give_back)

    def enqueue(self, sequence: PageSequence) -> None:
        with self._cond:
            self._pending.append(sequence)
            self._cond.notify()

    @property
    def waiting(self) -> int:
        """Pages accepted and not yet decoding (being prepared or queued)."""
        return len(self._holding)

    @property
    def ready(self) -> int:
        """Pages prepared and queued for a place in the batch."""
        return len(self._pending)

    # -- the model's thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._active and not self._pending:
                    self._cond.wait()
                newcomers = self._take_newcomers()
            try:
                with torch.inference_mode():
                    if newcomers:
                        self._admit(newcomers)
                    if self._active:
                        self._step()
            except Exception as exc:  # noqa: BLE001 - the loop must survive, and no page may be left waiting
                log.exception("continuous batching failed")
                for sequence in [*newcomers, *self._active]:
                    if not sequence.future.done():
                        self._pages.fail(sequence, failure_reason(exc))
                self._active, self._kv = [], None

    def _take_newcomers(self) -> list[PageSequence]:
        room = 0 if self._hold_admission else min(self.max_rows - len(self._active), self.max_admit)
        taken: list[PageSequence] = []
        while self._pending and len(taken) < room:
            sequence = self._pending.popleft()
            if sequence.future.done():  # cancelled while it waited
                continue
            self._holding.discard(sequence.future)
            taken.append(sequence)
        return taken

    def _give_back(self, future: Future) -> None:
        with self._cond:
            self._holding.discard(future)

    def _admit(self, newcomers: list[PageSequence]) -> None:
        groups: dict[Any, list[PageSequence]] = {}
        for sequence in newcomers:
            groups.setdefault(sequence.mode, []).append(sequence)
        for group in groups.values():
            self._prefill(group)

    def _prefill(self, group: list[PageSequence]) -> None:
        """Encode and prefill a same-mode group, then decode its first tokens; on failure split it
        before failing any page."""
        split_on_failure(group, self._encode_and_prefill, self._join, self._prefill_failed, "prefill")

    def _encode_and_prefill(self, group: list[PageSequence]) -> tuple[torch.Tensor, Any]:
        inputs = self._pages.encode(group)
        return inputs["attention_mask"], prefill(self._net, inputs)

    def _prefill_failed(self, sequence: PageSequence, exc: Exception) -> None:
        if is_out_of_memory(exc) and self._active:
            self._requeue([sequence])  # it fits once running pages have finished
        else:
            log.error("prefill failed", exc_info=exc)
            self._pages.fail(sequence, failure_reason(exc))

    def _join(self, group: list[PageSequence], prefilled: tuple[torch.Tensor, Any]) -> None:
        """The group's cache joins the running batch's; each page gets its first token."""
        mask, output = prefilled
        now = time.perf_counter()
        for sequence, length in zip(group, mask.sum(dim=1).tolist()):
            sequence.position = int(length)
            sequence.admitted_at = now
        kv = KvRows(output.cache, mask.long())
        self._kv = KvRows(kv.cache, kv.mask, self.kv_room) if self._kv is None else self._kv.join(kv)
        self._active.extend(group)
        self._advance(group, output.logits[:, -1, :])

    def _step(self) -> None:
        rows = self._active
        tokens = torch.tensor([[s.generated[-1]] for s in rows], device=self._kv.mask.device)
        positions = torch.tensor([[s.position] for s in rows], device=self._kv.mask.device)
        length = self._kv.mask.shape[1]
        try:
            mask = self._kv.extend_mask()
            output = self._net(
                input_ids=tokens, attention_mask=mask, position_ids=positions, cache=self._kv.cache,
                use_cache=True, logits_to_keep=1,
            )
        except Exception as exc:  # noqa: BLE001
            self._undo_step(length)
            if not (is_out_of_memory(exc) and len(rows) > 1):
                raise  # _run answers every row with the error
            torch.cuda.empty_cache()
            keep = len(rows) // 2
            log.warning("decode step over %d pages ran out of memory; %d go back to the queue",
                        len(rows), len(rows) - keep)
            self._requeue(rows[keep:])
            self._keep(list(range(keep)))
            return
        for sequence in rows:  # the token just fed is in the cache now
            sequence.position += 1
        self._pages.on_step(len(rows), len(self._holding))
        self._advance(rows, output.logits[:, -1, :])

    def _advance(self, rows: list[PageSequence], logits: torch.Tensor) -> None:
        """Pick each row's next token (greedy), then answer and drop the rows that are done."""
        scores = logits.float()
        if self._eos_id is not None:
            short = [i for i, s in enumerate(rows) if len(s.generated) < s.min_new_tokens]
            if short:
                scores[short, self._eos_id] = -float("inf")
        guards: dict[int, tuple[Any, list[int]]] = {}
        for index, sequence in enumerate(rows):
            guard = sequence.guard or self._guard
            if guard is not None:
                guards.setdefault(id(guard), (guard, []))[1].append(index)
        for guard, indices in guards.values():
            window = guard.window
            histories = [(rows[i].prompt_ids[-window:] + rows[i].generated[-window:])[-window:] for i in indices]
            for index in guard.ban(histories, scores, indices):
                rows[index].guard_hits += 1
        picked = scores.argmax(dim=-1).tolist()
        width = len(self._active)
        for sequence, token in zip(rows, picked):
            sequence.peak_rows = max(sequence.peak_rows, width)
            if token == self._eos_id:
                sequence.finished = True
                continue
            sequence.generated.append(token)
            sequence.finished = len(sequence.generated) >= sequence.limit
        self._retire()

    def _retire(self) -> None:
        keep = []
        now = time.perf_counter()
        for index, sequence in enumerate(self._active):
            if sequence.finished:
                self._pages.finish(sequence, (now - sequence.admitted_at) * 1000)
            elif not sequence.future.cancelled():  # a client that left frees its row
                keep.append(index)
        if len(keep) < len(self._active):
            self._hold_admission = False
            self._keep(keep)

    def _keep(self, indices: list[int]) -> None:
        self._active = [self._active[i] for i in indices]
        self._kv = self._kv.keep(indices) if indices else None

    def _requeue(self, sequences: list[PageSequence]) -> None:
        with self._cond:
            for sequence in reversed(sequences):
                sequence.restart()
                self._pending.appendleft(sequence)
                if not sequence.future.done():
                    self._holding.add(sequence.future)
            self._hold_admission = True

    def _undo_step(self, length: int) -> None:
        """Layers that ran before a failure already appended the step's column: cut it off again."""
        self._kv.mask = self._kv.mask[:, :length]
        for layer in self._kv.cache.layers:
            if layer.is_initialized:
                layer.keys, layer.values = layer.keys[:, :, :length], layer.values[:, :, :length]


def prefill(net: Any, inputs: dict[str, Any]) -> Any:
    """The model's forward over left-padded prompts: their cache and each row's next-token logits."""
    mask = inputs["attention_mask"]
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    return net(**inputs, position_ids=positions, use_cache=True, logits_to_keep=1)

