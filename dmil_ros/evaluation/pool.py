"""The held-out demo pool few-shot adaptation draws from.

Collected like the training demos (scripted expert, N(0, 0.1) executed-action noise, clean labels)
but from a different base seed (1000 by default, training uses 0), so pool demos are never training
demos; collected on first use, per horizon, and extended when more tasks or demos are asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dmil_ros.data.collect import CollectConfig
from dmil_ros.data.demos import ensure_demos
from dmil_ros.data.hdf5_dataset import RecordedDemo

POOL_SEED = 1000
POOL_SIZE = 10


def default_pool_path(horizon: int, pool_seed: int = POOL_SEED, env: str = "metaworld") -> Path:
    return Path("data") / f"eval_pool_{env}_h{horizon}_seed{pool_seed}.hdf5"


def load_pool(
    path: str | Path,
    tasks: Sequence[str],
    size: int,
    horizon: int,
    pool_seed: int = POOL_SEED,
    env: str = "metaworld",
    noise_std: float = 0.1,
    workers: int = 1,
    progress: bool = True,
    max_attempts: int = 10,
) -> dict[str, list[RecordedDemo]]:
    cfg = CollectConfig(
        env=env,
        max_episode_steps=horizon,
        noise_std=noise_std,
        base_seed=pool_seed,
        max_attempts=max_attempts,
    )
    return ensure_demos(path, tasks, size, cfg, workers=workers, progress=progress)
