"""The held-out demo pool few-shot adaptation draws from.

Collected like the training demos (scripted expert, N(0, 0.1) executed-action noise, clean labels)
but from a different base seed (1000 by default, training uses 0), so pool demos are never training
demos; collected on first use, per env and horizon, and extended when more tasks or demos are asked
for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dmil_ros.data.collect import CollectConfig
from dmil_ros.data.demos import ensure_demos
from dmil_ros.data.hdf5_dataset import RecordedDemo

POOL_SEED = 1000
POOL_SIZE = 10
DEMO_NOISE_STD = 0.1  # executed-action noise, as for the training demos
# Seeded expert attempts per demo. The kitchen expert solves some orders rarely under noise (hinge
# cabinet + kettle chains: ~8%); attempts are seeded per (demo, attempt), so a larger budget gives
# the same demos on every machine.
MAX_ATTEMPTS = {"metaworld": 10, "kitchen": 60}


def default_pool_path(horizon: int, pool_seed: int = POOL_SEED, env: str = "metaworld") -> Path:
    return Path("data") / f"eval_pool_{env}_h{horizon}_seed{pool_seed}.hdf5"


def load_pool(
    path: str | Path | None,
    tasks: Sequence[str],
    size: int,
    horizon: int,
    pool_seed: int = POOL_SEED,
    env: str = "metaworld",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, list[RecordedDemo]]:
    """`size` pool demos of every task (`path`, default data/eval_pool_<env>_h<H>_seed<S>.hdf5),
    collected where missing."""
    cfg = CollectConfig(
        env=env, max_episode_steps=horizon, noise_std=DEMO_NOISE_STD, base_seed=pool_seed,
        max_attempts=MAX_ATTEMPTS[env],
    )  # fmt: skip
    path = Path(path) if path else default_pool_path(horizon, pool_seed, env)
    return ensure_demos(path, tasks, size, cfg, workers=workers, progress=progress)
