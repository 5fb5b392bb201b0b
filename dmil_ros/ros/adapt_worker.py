"""Adaptation out of the control process: a spawned worker process runs core.adaptation.adapt.

In a thread of the policy node, the seconds-to-minutes of adaptation (a kitchen adaptation: ~80 s)
shared the GIL with the control loop. Here they run in one long-lived worker process (multiprocessing
"spawn": nothing of rclpy or the node's threads is inherited), started at the first adaptation and
reused. The worker reads the demos itself, adapts from the hierarchy it is given and returns the
adapted weights as numpy arrays; the node keeps acting with its current hierarchy meanwhile and swaps
the new one in when the result is accepted (see policy_node). Progress (step i/N, loss) comes back on a
queue, at most every PROGRESS_PERIOD, first and last step always; a job's result is returned only
after its progress has been forwarded (a marker closes each job's progress on that queue).

The worker runs on the normal scheduler at a lower priority (niceness +ADAPT_NICENESS): a real-time
control loop preempts it anyway, one on the normal scheduler is preferred over it. It uses `threads`
torch threads (parameter adapt_threads).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROGRESS_PERIOD = 0.5  # [s]
DRAIN_TIMEOUT = 2.0  # [s] how long a result waits for its job's last progress item
ADAPT_NICENESS = 10

_progress_queue: Any = None  # set in the worker process by _init_worker
_JOB_DONE = "done"  # (_JOB_DONE, job_id) on the progress queue: that job sends no more progress


@dataclass(frozen=True)
class AdaptJob:
    """Everything the worker needs (picklable): the hierarchy to adapt from, the demo files and how
    to read them (the node's observation mapping), the adaptation settings."""

    job_id: int
    hierarchy: Any  # core.hierarchy.Hierarchy
    demo_paths: tuple[Path, ...]
    mapping: Any
    config: Any  # core.config.AdaptConfig


@dataclass(frozen=True)
class AdaptOutcome:
    ok: bool
    message: str  # the reason when not ok; the numbers when ok
    params: dict[str, np.ndarray] | None = None  # the adapted weights when ok


def _init_worker(progress: Any, threads: int) -> None:
    global _progress_queue
    from dmil_ros.ros.realtime import normal_priority

    normal_priority()  # (spawned from a normal-priority thread already; a real-time parent must not leak)
    try:
        os.nice(ADAPT_NICENESS)
    except OSError:
        pass
    import torch

    torch.set_num_threads(max(1, threads))
    _progress_queue = progress


def _ready() -> bool:
    import dmil_ros.core.adaptation  # noqa: F401  (what run_job needs, imported while nothing waits)
    import dmil_ros.ros.mcap_io  # noqa: F401

    return True


def run_job(job: AdaptJob) -> AdaptOutcome:
    """In the worker process: read the demos, adapt, summarise (no exception for a bad demo)."""
    from dmil_ros.core.adaptation import adapt
    from dmil_ros.core.data import DemoError
    from dmil_ros.ros.mcap_io import DemoFileError, demo_from_mcap

    last = [0.0]

    def progress(step: int, steps: int, loss: float) -> None:
        now = time.monotonic()
        if step in (1, steps) or now - last[0] >= PROGRESS_PERIOD:
            last[0] = now
            if _progress_queue is not None:
                _progress_queue.put((job.job_id, step, steps, loss))

    task = job.mapping.task
    try:
        demos = [demo_from_mcap(p, job.mapping) for p in job.demo_paths]
        result = adapt(job.hierarchy, demos, job.config, progress=progress)
    except (DemoFileError, DemoError) as e:
        return AdaptOutcome(False, f"cannot adapt to {task}: {e}")
    finally:
        if _progress_queue is not None:
            _progress_queue.put((_JOB_DONE, job.job_id))
    summary = (f"{result.num_demos} demo(s), {result.num_states} states, {result.steps} adaptation steps, "
               f"loss {result.loss_before:.4g} -> {result.loss_after:.4g}, {result.seconds:.2f} s, "
               f"sub-skill use {list(result.skill_counts)}")
    if not result.accepted:
        return AdaptOutcome(False, f"adaptation to {task} refused ({result.reason}): {summary}")
    params = {k: v.detach().cpu().numpy() for k, v in result.hierarchy.params.items()}
    return AdaptOutcome(True, f"adapted to {task}: accepted, {summary}", params)


class AdaptWorker:
    """The node's side of the worker process. `run` blocks (call it from a helper thread)."""

    def __init__(self, threads: int, on_progress: Callable[[int, int, int, float], None]) -> None:
        self._threads = threads
        self._on_progress = on_progress
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._queue: Any = None
        self._forwarder: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._drained: dict[int, threading.Event] = {}  # job id -> set when its progress is forwarded

    def _ensure_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the adaptation worker is shut down")
            if self._pool is None:
                self._queue = self._ctx.Queue()
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=self._ctx, initializer=_init_worker,
                    initargs=(self._queue, self._threads))
                self._forwarder = threading.Thread(target=self._forward_progress, args=(self._queue,),
                                                   name="dmil-adapt-progress", daemon=True)
                self._forwarder.start()
            return self._pool

    def _forward_progress(self, q: Any) -> None:
        while True:
            try:
                item = q.get()
            except (EOFError, OSError, ValueError):
                return
            if item is None:
                return
            if item[0] == _JOB_DONE:
                with self._lock:
                    drained = self._drained.pop(item[1], None)
                if drained is not None:
                    drained.set()
                continue
            self._on_progress(*item)

    def prestart(self) -> None:
        """Start the worker process now, from a helper thread at normal priority (it returns at once)."""
        def start() -> None:
            from dmil_ros.ros.realtime import normal_priority

            normal_priority()
            try:
                self._ensure_pool().submit(_ready).result()
            except (RuntimeError, concurrent.futures.process.BrokenProcessPool):
                pass  # shut down meanwhile, or died: the next adaptation starts one

        threading.Thread(target=start, name="dmil-adapt-prestart", daemon=True).start()

    def run(self, job: AdaptJob) -> AdaptOutcome:
        """Adapt in the worker process; a crashed worker is replaced at the next call. Returns after
        the job's last progress item has reached on_progress."""
        drained = threading.Event()
        with self._lock:
            self._drained[job.job_id] = drained
        try:
            outcome = self._ensure_pool().submit(run_job, job).result()
            drained.wait(DRAIN_TIMEOUT)
        except concurrent.futures.process.BrokenProcessPool as e:
            self._discard_pool()
            outcome = AdaptOutcome(False, f"the adaptation worker process died ({e}); the next adaptation "
                                          "starts a new one")
        finally:
            with self._lock:
                self._drained.pop(job.job_id, None)
        return outcome

    def _discard_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            q, self._queue = self._queue, None
            forwarder, self._forwarder = self._forwarder, None
        if pool is not None:
            _stop(pool)
        if q is not None:
            # End the forwarding thread and the queue's feeder now, not in the interpreter's exit.
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
            if forwarder is not None:
                forwarder.join(timeout=2.0)
            q.close()
            q.join_thread()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._discard_pool()


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel and end the worker now (an adaptation under way is abandoned)."""
    processes: Sequence[Any] = list(getattr(pool, "_processes", {}).values())  # the pool has no kill()
    for p in processes:
        p.terminate()
    for p in processes:
        p.join(timeout=2.0)
        if p.is_alive():
            p.kill()
            p.join(timeout=2.0)
    # wait=True: the pool's manager thread has closed its wake-up pipe before the interpreter exits;
    # otherwise concurrent.futures' exit hook can write to it while it closes (OSError at exit).
    pool.shutdown(wait=True, cancel_futures=True)


def hierarchy_from(base: Any, params: dict[str, np.ndarray]) -> Any:
    """The adapted Hierarchy: `base`'s config and normalizer with the weights from the worker."""
    import torch

    from dmil_ros.core.hierarchy import Hierarchy

    return Hierarchy(base.config, {k: torch.from_numpy(v) for k, v in params.items()}, base.normalizer)

