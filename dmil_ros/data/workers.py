"""Simulator jobs on spawn-started worker processes, or in this process when there is one worker.

Demo collection and evaluation both run many independent, seeded simulator jobs whose results do
not depend on where they run. A job is `(function, argument)` with a module-level (picklable)
function; `handle(result)` sees each result in this process as soon as it is ready and may return
follow-up jobs (an adaptation's rollouts), which start right away. Spawn, not fork: forking a
process that holds MuJoCo or torch threads is not safe.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

Job = tuple[Callable[[Any], Any], Any]
Handler = Callable[[Any], Iterable[Job] | None]


class WorkerPool:
    """`workers` processes kept for the pool's lifetime (none when `workers` <= 1)."""

    def __init__(self, workers: int = 1, initializer: Callable[[], None] | None = None) -> None:
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 1:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=initializer)

    def run(self, jobs: Iterable[Job], handle: Handler, max_in_flight: int | None = None) -> None:
        """Run `jobs` and every follow-up job `handle` returns. In this process: one job after the
        other, each one's follow-ups first. On workers: at most `max_in_flight` of `jobs` queued at a
        time (None: all; follow-ups are always queued at once), results in completion order."""
        if self._pool is None:
            for job in jobs:
                self._run_here(job, handle)
            return
        pool = self._pool
        queue = iter(jobs)
        pending: set[Future[Any]] = set()

        def top_up() -> None:
            while max_in_flight is None or len(pending) < max_in_flight:
                job = next(queue, None)
                if job is None:
                    return
                pending.add(pool.submit(*job))

        try:
            top_up()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    for fn, arg in handle(future.result()) or ():
                        pending.add(pool.submit(fn, arg))
                top_up()
        finally:
            for future in pending:
                future.cancel()

    def _run_here(self, job: Job, handle: Handler) -> None:
        fn, arg = job
        for follow_up in handle(fn(arg)) or ():
            self._run_here(follow_up, handle)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
