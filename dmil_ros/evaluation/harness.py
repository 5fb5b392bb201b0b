"""One evaluation job end to end: pool demos for every cell's tasks, then every cell in turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dmil_ros.envs.registry import suite_tasks
from dmil_ros.evaluation.few_shot import Cell, CellResult, evaluate_cell
from dmil_ros.evaluation.policies import ResolvedPolicy
from dmil_ros.evaluation.pool import POOL_SEED, POOL_SIZE, default_pool_path, load_pool
from dmil_ros.evaluation.protocol import horizon_for
from dmil_ros.evaluation.rollout import RolloutRunner


@dataclass(frozen=True)
class EvalSettings:
    protocol: str = "official"
    horizon: int | None = None  # overrides the protocol's horizon (reported as such)
    trials: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    pool: str | None = None  # default: data/eval_pool_<env>_h<horizon>_seed<pool_seed>.hdf5
    pool_size: int = POOL_SIZE
    pool_seed: int = POOL_SEED
    workers: int = 1
    env: str = "metaworld"
    progress: bool = True

    @property
    def resolved_horizon(self) -> int:
        return horizon_for(self.protocol, self.horizon)


def make_cells(
    suites: Sequence[str], splits: Sequence[str], shots: Sequence[int], tasks: Sequence[str] = ()
) -> list[Cell]:
    """Cells in Table-1 order; an explicit task list is one 'custom' suite evaluated per split label."""
    cells = []
    for suite in ["custom"] if tasks else suites:
        for split in splits:
            names = tuple(tasks) if tasks else tuple(suite_tasks(suite, split))
            cells.extend(Cell(suite, split, names, k) for k in shots)
    return cells


def evaluate(resolved: ResolvedPolicy, cells: Sequence[Cell], s: EvalSettings) -> list[CellResult]:
    horizon = s.resolved_horizon
    demo_horizon = horizon_for(
        s.protocol
    )  # the pool keeps the protocol's horizon; --horizon cuts episodes only
    needed = max(max(c.shots for c in cells), s.pool_size)
    tasks = list(dict.fromkeys(t for c in cells for t in c.tasks))
    pool_path = Path(s.pool) if s.pool else default_pool_path(demo_horizon, s.pool_seed, s.env)
    pool = load_pool(
        pool_path, tasks, needed, demo_horizon, s.pool_seed, s.env, workers=s.workers, progress=s.progress
    )
    with RolloutRunner(s.workers) as runner:
        return [
            evaluate_cell(
                resolved.method,
                resolved.policy,
                pool,
                cell,
                trials=s.trials,
                seeds=s.seeds,
                horizon=horizon,
                protocol=s.protocol,
                runner=runner,
                env=s.env,
                checkpoint=resolved.checkpoint,
                progress=s.progress,
            )  # fmt: skip
            for cell in cells
        ]
