"""The one evaluation pipeline, Meta-World and kitchen alike: `evaluate(cells, scorer, settings)`.

For every cell, evaluation seed and task: draw k demos from the held-out pool (evaluation/pool.py),
adapt the cell's policy with its method's own adaptation (none for the expert), then roll out
`trials` fresh episodes whose seeds avoid every pool demo seed (evaluation/seeds.py). The scorer
turns episodes into the cell's numbers (evaluation/scoring.py). Adaptations and episodes run in this
process or on worker processes (evaluation/rollout.py); the numbers do not depend on which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from dmil_ros.data.demos import to_core
from dmil_ros.evaluation.cells import Cell
from dmil_ros.evaluation.pool import POOL_SEED, POOL_SIZE, load_pool
from dmil_ros.evaluation.protocol import horizon_for
from dmil_ros.evaluation.rollout import AdaptJob, EpisodeOutcome, RolloutJob, RolloutRunner, rollout_jobs
from dmil_ros.evaluation.scoring import Scorer
from dmil_ros.evaluation.seeds import draw_demo_indices, trial_seeds
from dmil_ros.methods.base import Adaptation


@dataclass(frozen=True)
class EvalSettings:
    env: str = "metaworld"
    protocol: str = "official"
    horizon: int | None = None  # cuts episodes (reported as such); the pool keeps the protocol's horizon
    trials: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    pool: str | None = None  # default: data/eval_pool_<env>_h<protocol horizon>_seed<pool_seed>.hdf5
    pool_size: int = POOL_SIZE
    pool_seed: int = POOL_SEED
    workers: int = 1
    progress: bool = True

    @property
    def resolved_horizon(self) -> int:
        return horizon_for(self.protocol, self.horizon)

    def describe(self) -> dict[str, Any]:
        """What every result states about how it was measured."""
        return {"env": self.env, "protocol": self.protocol, "horizon": self.resolved_horizon,
                "trials": self.trials, "seeds": list(self.seeds)}  # fmt: skip


@dataclass
class CellResult:
    cell: Cell
    scorer: Scorer
    settings: EvalSettings
    episodes: dict[tuple[int, str], list[EpisodeOutcome]]  # (seed, task) -> its trials, in order
    adaptations: list[Adaptation] = field(default_factory=list)

    def scores(self, seed: int, task: str) -> list[float]:
        return [self.scorer.score(task, e) for e in self.episodes[(seed, task)]]

    @property
    def per_task_per_seed(self) -> dict[str, list[float]]:
        seeds = self.settings.seeds
        return {t: [float(np.mean(self.scores(s, t))) for s in seeds] for t in self.cell.tasks}

    @property
    def per_seed(self) -> list[float]:
        rates = np.array([self.per_task_per_seed[t] for t in self.cell.tasks])  # (tasks, seeds)
        return [float(x) for x in rates.mean(0)]

    def _all_scores(self) -> np.ndarray:
        seeds, tasks = self.settings.seeds, self.cell.tasks
        return np.asarray([x for s in seeds for t in tasks for x in self.scores(s, t)])

    @property
    def mean(self) -> float:
        if self.scorer.stderr_over == "episodes":
            return float(self._all_scores().mean())
        return float(np.mean(self.per_seed))

    @property
    def stderr(self) -> float | None:
        """Standard error over evaluation seeds or over all episodes (the scorer says which); None
        with a single one."""
        v = self._all_scores() if self.scorer.stderr_over == "episodes" else np.asarray(self.per_seed)
        return float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None

    def adapt_stats(self) -> dict[str, float | None]:
        """Mean action MSE on the k demos before/after adaptation (None where there is none: the
        expert) and seconds per adaptation."""

        def finite_mean(values: list[float]) -> float | None:
            v = np.asarray(values, dtype=float)
            v = v[np.isfinite(v)]
            return float(v.mean()) if v.size else None

        a = self.adaptations
        return {
            "loss_before": finite_mean([x.loss_before for x in a]),
            "loss_after": finite_mean([x.loss_after for x in a]),
            "seconds_per_task": float(np.mean([x.seconds for x in a])) if a else 0.0,
        }

    def to_json(self) -> dict[str, Any]:
        c, p = self.cell, self.cell.policy
        by_task = {t: [e for s in self.settings.seeds for e in self.episodes[(s, t)]] for t in c.tasks}
        return {
            "suite": c.suite, "split": c.split, "label": c.label, "shots": c.shots, "tasks": list(c.tasks),
            "method": p.method.name, "checkpoint": p.checkpoint, **self.settings.describe(),
            "score": self.scorer.name, "mean": self.mean, "stderr": self.stderr,
            "stderr_over": self.scorer.stderr_over, "episodes": sum(map(len, by_task.values())),
            "per_seed": self.per_seed,
            "per_task": {t: float(np.mean(v)) for t, v in self.per_task_per_seed.items()},
            "per_task_per_seed": self.per_task_per_seed, **self.scorer.details(by_task),
            "adapt": self.adapt_stats(),
        }  # fmt: skip


def evaluate(cells: Sequence[Cell], scorer: Scorer, s: EvalSettings) -> list[CellResult]:
    """Every cell's episodes, in one pass over the workers."""
    if not cells:
        return []
    horizon = s.resolved_horizon
    tasks = list(dict.fromkeys(t for c in cells for t in c.tasks))
    needed = max(max(c.shots for c in cells), s.pool_size)
    demo_horizon = horizon_for(s.protocol)
    pool = load_pool(s.pool, tasks, needed, demo_horizon, s.pool_seed, s.env, s.workers, s.progress)
    demo_seeds = {t: {d.seed for d in pool[t]} for t in tasks}
    adapt_jobs: list[AdaptJob] = []
    for ci, cell in enumerate(cells):
        for seed in s.seeds:
            for task in cell.tasks:
                demos = pool[task]
                picked = [demos[i] for i in draw_demo_indices(len(demos), cell.shots, task, seed)]
                policy = cell.policy
                adapt_jobs.append(AdaptJob(policy.method, policy.policy, tuple(to_core(picked)), seed,
                                           (ci, seed, task)))  # fmt: skip

    def rollouts(key: tuple, adapted: Adaptation) -> list[RolloutJob]:
        _, seed, task = key
        ep_seeds = trial_seeds(task, seed, s.trials, demo_seeds[task])
        return rollout_jobs(s.env, task, horizon, adapted.policy, ep_seeds, key)

    method = cells[0].policy.method.name
    bar = tqdm(total=len(adapt_jobs) * s.trials, unit="ep", disable=not s.progress, desc=f"eval {method}")
    with RolloutRunner(s.workers) as runner:
        try:
            adaptations, outcomes = runner.adapt_and_run(adapt_jobs, rollouts, bar.update)
        finally:
            bar.close()
    results = [CellResult(cell, scorer, s, {}) for cell in cells]
    for (ci, seed, task, _), eps in outcomes.items():  # in the order of the adapt jobs, then of the trials
        results[ci].episodes.setdefault((seed, task), []).extend(eps)
    for job in adapt_jobs:
        results[job.key[0]].adaptations.append(adaptations[job.key])
    return results
