"""Coalesce concurrent calls into one batched call (dynamic batching, as model servers do).

Why: a single short text query through CLIP's text tower is bound by reading its ~150 MB of
weights, not by arithmetic, so four queries in one forward pass cost little more than one. A
gunicorn worker's threads that need the encoder at the same moment share one pass.

No caller ever waits for company: a call that finds no batch running runs at once with whatever is
queued (usually only itself); calls that arrive meanwhile queue and go together in the next pass,
run by the first of them. A lone query therefore costs exactly what it cost before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class _Job:
    __slots__ = ("error", "finished", "item", "leads", "result", "wake")

    def __init__(self, item: Any):
        self.item = item
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.leads = False
        self.wake = threading.Event()  # set once: finished, or promoted to run the next pass


class Coalescer(Generic[In, Out]):
    """`coalescer(item)` returns `batch_fn([..., item, ...])`'s output for `item`, thread-safely.

    `batch_fn` receives at most `max_batch` items in arrival order and must return one output per
    item. If it raises, every caller in that pass gets the exception; later calls are unaffected.
    Passes never overlap, so `batch_fn` needs no locking of its own.
    """

    def __init__(self, batch_fn: Callable[[list[In]], Sequence[Out]], *, max_batch: int = 16):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._batch_fn = batch_fn
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._running = False
        self.passes = 0  # batch_fn calls so far (tests and diagnostics)

    def __call__(self, item: In) -> Out:
        job = _Job(item)
        with self._lock:
            self._queue.append(job)
            if not self._running:
                self._running = job.leads = True
        if not job.leads:
            job.wake.wait()
        if not job.finished:  # promoted: run passes until this job is served
            self._lead(job)
        if job.error is not None:
            raise job.error
        return job.result

    def _lead(self, own: _Job) -> None:
        while not own.finished:
            with self._lock:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._run(batch)
        # Hand over: the longest-waiting caller runs the next pass, so nobody's answer waits
        # behind other callers' passes.
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.leads = True
                successor.wake.set()
            else:
                self._running = False

    def _run(self, batch: list[_Job]) -> None:
        try:
            self.passes += 1
            outputs = self._batch_fn([job.item for job in batch])
            if len(outputs) != len(batch):
                raise RuntimeError(f"batch_fn returned {len(outputs)} outputs for {len(batch)} items")  # fmt: skip
            for job, output in zip(batch, outputs, strict=True):
                job.result = output
        except BaseException as exc:  # every waiting caller must hear of it, whatever it is
            for job in batch:
                job.error = exc
        finally:
            for job in batch:
                job.finished = True
                job.wake.set()
