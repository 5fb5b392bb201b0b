"""Franka Kitchen evaluation as in the paper's Tables 2 and 5: completed sub-tasks on unseen combinations.

For every unseen combination (envs.kitchen_tasks.UNSEEN) the policy meta-trained without that
combination's excluded object adapts on k demos of the whole combination (drawn from a held-out pool,
base seed 1000; training demos use 0), then runs `trials` fresh episodes per evaluation seed. An
episode scores the number of the combination's four sub-tasks completed (any order). Reported: mean
and standard error over all episodes of the combination (trials x seeds), plus how often each
sub-task was completed, so one sees whether the unseen object's sub-task is the one that fails.

Checkpoints: one per excluded object, `<root>/no_<object>/` (a checkpoint or a run directory whose
best/ is used); the shipped root is dmil_ros/checkpoints/kitchen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import dmil_ros
from dmil_ros.data.demos import to_core
from dmil_ros.data.hdf5_dataset import RecordedDemo
from dmil_ros.envs.kitchen_tasks import SUITE_PREFIX, UNSEEN, UnseenCombo
from dmil_ros.evaluation.policies import MissingCheckpoint, ResolvedPolicy, checkpoint_present, resolve_policy
from dmil_ros.evaluation.pool import POOL_SEED, POOL_SIZE, default_pool_path, load_pool
from dmil_ros.evaluation.rollout import AdaptJob, EpisodeOutcome, RolloutJob, RolloutRunner, rollout_jobs
from dmil_ros.evaluation.seeds import draw_demo_indices, trial_seeds
from dmil_ros.methods.base import Adaptation
from dmil_ros.methods.registry import method_class

_log = logging.getLogger(__name__)

ENV = "kitchen"
HORIZON = 500  # the scripted expert needs ~400-480 steps for four sub-tasks; D4RL's 280 is too short
DEMO_NOISE_STD = 0.1  # executed-action noise of pool demos, as for the training demos
# The expert solves some orders rarely under noise (hinge cabinet + kettle chains: ~8%); attempts are
# seeded per (demo, attempt), so a larger budget gives the same demos on every machine.
MAX_ATTEMPTS = 60
TRAIN_CONFIG = "config/train_kitchen.yaml"


def shipped_kitchen_dir() -> Path:
    return Path(dmil_ros.__file__).parent / "checkpoints" / "kitchen"


def run_name(excluded: str) -> str:
    return f"no_{excluded}"


@dataclass(frozen=True)
class KitchenSettings:
    shots: int = 3
    trials: int = 10
    seeds: tuple[int, ...] = (0, 1)
    horizon: int = HORIZON
    pool: str | None = None  # default data/eval_pool_kitchen_h<H>_seed<S>.hdf5
    pool_size: int = POOL_SIZE
    pool_seed: int = POOL_SEED
    workers: int = 1
    progress: bool = True
    combos: tuple[UnseenCombo, ...] = UNSEEN


def excluded_objects(combos: Sequence[UnseenCombo]) -> list[str]:
    return list(dict.fromkeys(c.excluded for c in combos))


def resolve_kitchen_policies(
    method: str | None, root: str | None, combos: Sequence[UnseenCombo] = UNSEEN
) -> dict[str, ResolvedPolicy]:
    """One policy per excluded object from `<root>/no_<object>` (default: the shipped kitchen root)."""
    if method is not None and not method_class(method).needs_training and root is None:
        none = resolve_policy(method, None)  # BC from scratch: nothing trained, same for every combo
        return {o: none for o in excluded_objects(combos)}
    if root is None:
        if method not in (None, "dmil"):
            raise MissingCheckpoint(
                f"method {method!r} needs kitchen checkpoints: pass --checkpoint ROOT (ROOT/no_<object>/) "
                "or --train-missing to train them with config/train_kitchen.yaml"
            )
        base = shipped_kitchen_dir()
    else:
        base = Path(root)
    out = {}
    for obj in excluded_objects(combos):
        d = base / run_name(obj)
        if not (checkpoint_present(d) or checkpoint_present(d / "best")):
            raise MissingCheckpoint(
                f"no kitchen checkpoint for excluded object {obj!r} at {d}; train it with "
                f"`dmil train --config {TRAIN_CONFIG} --set suite={SUITE_PREFIX}{obj} --out {d}`"
            )
        out[obj] = resolve_policy(method, str(d))
    return out


def train_kitchen_policies(
    method: str,
    config: str,
    overrides: Sequence[str],
    root: Path,
    combos: Sequence[UnseenCombo] = UNSEEN,
    progress: bool = True,
) -> dict[str, ResolvedPolicy]:
    """Train (or reuse) `root/no_<object>` for every excluded object, then resolve them."""
    from dmil_ros.training.config import load_config
    from dmil_ros.training.runner import train

    for obj in excluded_objects(combos):
        run_dir = root / run_name(obj)
        if checkpoint_present(run_dir / "best"):
            _log.info("reusing %s", run_dir / "best")
            continue
        cfg = load_config(config, [*overrides, f"method={method}", f"suite={SUITE_PREFIX}{obj}"])
        _log.info("training %s without %s into %s", method, obj, run_dir)
        train(cfg, run_dir, progress=progress, overwrite=True)
    return resolve_kitchen_policies(method, str(root), combos)


def _mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None)


def _finite_mean(values: np.ndarray) -> float | None:
    """Mean of the finite values; None when there are none (the expert adapts nothing)."""
    v = values[np.isfinite(values)]
    return float(v.mean()) if v.size else None


def _combo_row(
    ci: int,
    combo: UnseenCombo,
    outcomes: Mapping[tuple, Sequence[EpisodeOutcome]],
    adapt: Sequence[tuple[float, float, float]],
    policies: Mapping[str, ResolvedPolicy],
    seeds: Sequence[int],
) -> dict[str, Any]:
    by_seed: dict[int, list[EpisodeOutcome]] = {sd: [] for sd in seeds}
    for (i, sd, _), eps in outcomes.items():
        if i == ci:
            by_seed[sd].extend(eps)
    eps = [e for sd in seeds for e in by_seed[sd]]

    def score(e: EpisodeOutcome) -> int:
        return sum(t in combo.subtasks for t in e.completed)

    counts = [score(e) for e in eps]
    mean, se = _mean_se(counts)
    stats = np.array(adapt, dtype=float)  # (seeds, [loss before, loss after, seconds])
    return {
        "label": combo.label, "task": combo.task, "excluded": combo.excluded,
        "checkpoint": policies[combo.excluded].checkpoint,
        "mean_completed": mean, "stderr": se, "episodes": len(counts),
        "per_seed": {sd: float(np.mean([score(e) for e in by_seed[sd]])) for sd in seeds},
        "subtask_completion": {t: float(np.mean([t in e.completed for e in eps])) for t in combo.subtasks},
        "full_success": float(np.mean([c == len(combo.subtasks) for c in counts])),
        "adapt": {"loss_before": _finite_mean(stats[:, 0]), "loss_after": _finite_mean(stats[:, 1]),
                  "seconds": float(np.mean(stats[:, 2]))},
    }  # fmt: skip


def load_kitchen_pool(
    pool: str | None,
    tasks: Sequence[str],
    size: int,
    horizon: int = HORIZON,
    pool_seed: int = POOL_SEED,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, list[RecordedDemo]]:
    """Held-out kitchen demos (`pool`, default data/eval_pool_kitchen_h<H>_seed<S>.hdf5), collected
    with the kitchen's demo noise and attempt budget where missing."""
    path = Path(pool) if pool else default_pool_path(horizon, pool_seed, ENV)
    return load_pool(path, tasks, size, horizon, pool_seed, ENV, noise_std=DEMO_NOISE_STD, workers=workers,
                     progress=progress, max_attempts=MAX_ATTEMPTS)  # fmt: skip


def evaluate_kitchen(policies: Mapping[str, ResolvedPolicy], s: KitchenSettings) -> dict[str, Any]:
    """Table-2 numbers for `policies` (excluded object -> policy); JSON-ready."""
    t0 = time.perf_counter()
    tasks = list(dict.fromkeys(c.task for c in s.combos))
    pool = load_kitchen_pool(s.pool, tasks, max(s.pool_size, s.shots), s.horizon, s.pool_seed, s.workers,
                             s.progress)  # fmt: skip
    adapt_jobs: list[AdaptJob] = []
    for ci, combo in enumerate(s.combos):
        resolved = policies[combo.excluded]
        demos = pool[combo.task]
        for seed in s.seeds:
            picked = [demos[i] for i in draw_demo_indices(len(demos), s.shots, combo.task, seed)]
            support = tuple(to_core(picked))
            adapt_jobs.append(AdaptJob(resolved.method, resolved.policy, support, seed, (ci, seed)))

    def rollouts(key: tuple, adapted: Adaptation) -> list[RolloutJob]:
        ci, seed = key
        task = s.combos[ci].task
        ep_seeds = trial_seeds(task, seed, s.trials, {d.seed for d in pool[task]})
        return rollout_jobs(ENV, task, s.horizon, adapted.policy, ep_seeds, key)

    bar = tqdm(total=len(adapt_jobs) * s.trials, unit="ep", disable=not s.progress,
               desc="kitchen unseen combinations")  # fmt: skip
    with RolloutRunner(s.workers) as runner:
        try:
            adaptations, outcomes = runner.adapt_and_run(adapt_jobs, rollouts, bar.update)
        finally:
            bar.close()
    adapt = {
        ci: [(a.loss_before, a.loss_after, a.seconds) for a in (adaptations[(ci, sd)] for sd in s.seeds)]
        for ci in range(len(s.combos))
    }
    rows = [
        _combo_row(ci, combo, outcomes, adapt[ci], policies, s.seeds) for ci, combo in enumerate(s.combos)
    ]
    method = next(iter(policies.values())).method
    return {
        "env": ENV, "method": method.name, "settings": method.describe(),
        "shots": s.shots, "trials": s.trials, "seeds": list(s.seeds),
        "horizon": s.horizon,
        "per_combo": {r["label"]: r["mean_completed"] for r in rows},
        "stderr": {r["label"]: r["stderr"] for r in rows},
        "min_completed": min(r["mean_completed"] for r in rows),
        "combos": rows, "wall_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def render_kitchen_table(columns: Sequence[tuple[str, Mapping[str, Any]]], title: str) -> str:
    """Rows: unseen combinations; columns: (label, evaluate_kitchen result), e.g. methods or K values."""
    labels = list(dict.fromkeys(r["label"] for _, res in columns for r in res["combos"]))
    header = ["Task (unseen; excluded object)"] + [name for name, _ in columns]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in labels:
        cells = []
        for _, res in columns:
            row = next((r for r in res["combos"] if r["label"] == label), None)
            if row is None:
                cells.append("–")
            elif row["stderr"] is None:
                cells.append(f"{row['mean_completed']:.2f}")
            else:
                cells.append(f"{row['mean_completed']:.2f} ± {row['stderr']:.2f}")
        lines.append("| " + " | ".join([label, *cells]) + " |")
    def protocol(res: Mapping[str, Any]) -> str:
        return (f"{res['trials']} trials x {len(res['seeds'])} evaluation seed(s); {res['shots']}-shot "
                f"adaptation; horizon {res['horizon']}")  # fmt: skip

    protocols = {name: protocol(res) for name, res in columns}
    lines += ["", "Completed sub-tasks (of 4), mean ± standard error over"]
    if len(set(protocols.values())) == 1:
        lines[-1] += f" {next(iter(protocols.values()))}."
    else:  # columns from different runs (`dmil eval --table-from`)
        lines[-1] += " the episodes of each column:"
        lines += [f"- {name}: {p}" for name, p in protocols.items()]
    return "\n".join(lines) + "\n"
