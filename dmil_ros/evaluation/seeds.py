"""Seeds of the evaluation: which pool demos an evaluation seed adapts on, and its episode seeds.

Both come from SeedSequence streams keyed by (evaluation seed, task, purpose), so they do not depend
on task order, worker count or which other tasks are evaluated. Episode seeds that coincide with a
demo seed are skipped, so no trial starts from the initial state of a demonstration.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection

import numpy as np

_DEMO_DRAW, _TRIALS = 0xD3E0, 0x7E57


def _stream(eval_seed: int, task: str, purpose: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([eval_seed, zlib.crc32(task.encode()), purpose])


def draw_demo_indices(pool_size: int, shots: int, task: str, eval_seed: int) -> list[int]:
    """`shots` distinct indices into the task's demo pool."""
    if shots > pool_size:
        raise ValueError(f"{task}: {shots}-shot needs {shots} pool demos, the pool has {pool_size}")
    rng = np.random.default_rng(_stream(eval_seed, task, _DEMO_DRAW))
    return sorted(int(i) for i in rng.choice(pool_size, size=shots, replace=False))


def trial_seeds(task: str, eval_seed: int, n: int, exclude: Collection[int] = ()) -> list[int]:
    """`n` distinct episode reset seeds, none of them in `exclude` (the demo seeds)."""
    state = _stream(eval_seed, task, _TRIALS).generate_state(2 * n + 8)
    seeds: list[int] = []
    for s in (int(x) for x in state):
        if s not in exclude and s not in seeds:
            seeds.append(s)
        if len(seeds) == n:
            return seeds
    raise RuntimeError("could not draw enough distinct episode seeds")  # practically unreachable
