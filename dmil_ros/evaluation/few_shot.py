"""Few-shot evaluation of one method on one cell (a task set x a number of shots).

For every evaluation seed and task: draw k demos from the held-out pool, adapt (the method's own
adaptation; none for the expert), then roll out N fresh episodes whose seeds avoid every pool demo
seed. A task's success rate is successes / N; a seed's score is the mean over tasks; the reported
mean and standard error are over evaluation seeds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.data.demos import to_core
from dmil_ros.data.hdf5_dataset import RecordedDemo
from dmil_ros.evaluation.rollout import AdaptJob, RolloutJob, RolloutRunner, rollout_jobs
from dmil_ros.evaluation.seeds import draw_demo_indices, trial_seeds
from dmil_ros.methods.base import Adaptation, Method


@dataclass(frozen=True)
class Cell:
    suite: str  # suite name, or "custom" for an explicit task list
    split: str  # "train" (meta-training tasks) or "test" (meta-testing tasks), or a label
    tasks: tuple[str, ...]
    shots: int


@dataclass
class CellResult:
    cell: Cell
    method: str
    checkpoint: str | None
    protocol: str
    horizon: int
    trials: int
    seeds: list[int]
    per_task_per_seed: dict[str, list[float]]
    adapt: dict[str, float | None] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def per_seed(self) -> list[float]:
        rates = np.array([self.per_task_per_seed[t] for t in self.cell.tasks])  # (tasks, seeds)
        return [float(x) for x in rates.mean(0)]

    @property
    def mean_success(self) -> float:
        return float(np.mean(self.per_seed))

    @property
    def stderr(self) -> float | None:
        """Standard error over evaluation seeds (None with a single seed)."""
        s = self.per_seed
        return float(np.std(s, ddof=1) / np.sqrt(len(s))) if len(s) > 1 else None

    def to_json(self) -> dict[str, Any]:
        c = self.cell
        return {
            "suite": c.suite,
            "split": c.split,
            "shots": c.shots,
            "method": self.method,
            "checkpoint": self.checkpoint,
            "protocol": self.protocol,
            "horizon": self.horizon,
            "trials": self.trials,
            "seeds": self.seeds,
            "tasks": list(c.tasks),
            "mean_success": self.mean_success,
            "stderr": self.stderr,
            "per_seed": self.per_seed,
            "per_task": {t: float(np.mean(v)) for t, v in self.per_task_per_seed.items()},
            "per_task_per_seed": self.per_task_per_seed,
            "adapt": self.adapt,
            "wall_s": round(self.wall_s, 2),
        }


def evaluate_cell(
    method: Method,
    policy: Hierarchy | None,
    pool: Mapping[str, Sequence[RecordedDemo]],
    cell: Cell,
    *,
    trials: int,
    seeds: Sequence[int],
    horizon: int,
    protocol: str,
    runner: RolloutRunner,
    env: str = "metaworld",
    checkpoint: str | None = None,
    progress: bool = True,
) -> CellResult:
    t0 = time.perf_counter()
    adapt_jobs: list[AdaptJob] = []
    for seed in seeds:
        for task in cell.tasks:
            demos = pool[task]
            picked = [demos[i] for i in draw_demo_indices(len(demos), cell.shots, task, seed)]
            adapt_jobs.append(AdaptJob(method, policy, tuple(to_core(picked)), seed, (seed, task)))

    def rollouts(key: tuple, adapted: Adaptation) -> list[RolloutJob]:
        seed, task = key
        ep_seeds = trial_seeds(task, seed, trials, {d.seed for d in pool[task]})
        return rollout_jobs(env, task, horizon, adapted.policy, ep_seeds, key)

    bar = tqdm(
        total=len(adapt_jobs) * trials, unit="ep", disable=not progress,
        desc=f"{method.name} {cell.suite}/{cell.split} {cell.shots}-shot",
    )  # fmt: skip
    try:
        adaptations, outcomes = runner.adapt_and_run(adapt_jobs, rollouts, bar.update)
    finally:
        bar.close()
    done = [adaptations[j.key] for j in adapt_jobs]  # in the serial order, so the means are too
    before = [a.loss_before for a in done]
    after = [a.loss_after for a in done]
    adapt_s = [a.seconds for a in done]
    successes: dict[tuple[int, str], list[bool]] = {}
    for (seed, task, _), eps in outcomes.items():
        successes.setdefault((seed, task), []).extend(e.success for e in eps)
    per_task = {t: [float(np.mean(successes[(s, t)])) for s in seeds] for t in cell.tasks}
    adapt_stats = {
        "loss_before": float(np.nanmean(before)) if before else float("nan"),
        "loss_after": float(np.nanmean(after)) if after else float("nan"),
        "seconds_per_task": float(np.mean(adapt_s)) if adapt_s else 0.0,
    }
    return CellResult(
        cell, method.name, checkpoint, protocol, horizon, trials, list(seeds), per_task,
        {k: (None if np.isnan(v) else v) for k, v in adapt_stats.items()}, time.perf_counter() - t0,
    )  # fmt: skip
