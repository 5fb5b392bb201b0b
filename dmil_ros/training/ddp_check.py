"""Self-check of data-parallel training on the synthetic benchmark (no simulator needed).

Starts `world` CPU ranks (torch.multiprocessing, gloo over a FileStore), trains a small model for a
few meta-iterations with the same seed on every rank, and returns every rank's final parameters
next to those of a single-process run on the same meta-batches. Ranks must match exactly; the
single-process run matches up to float summation order.

    python -m dmil_ros.training.ddp_check --world 2 --method dmil
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dmil_ros.core import synthetic
from dmil_ros.core.networks import Params
from dmil_ros.methods.distributed import Comm
from dmil_ros.methods.registry import make_method
from dmil_ros.training.trainer import Trainer

TASKS_PER_BATCH = 4
DMIL_OVERRIDES = {
    "inner_lr_high": 0.1, "inner_lr_low": 0.05, "outer_lr": 3e-3, "tasks_per_batch": TASKS_PER_BATCH,
    "windows_per_batch": 4, "window_length": 8, "dead_skill_patience": 2,
}  # fmt: skip


def _train(method_name: str, steps: int, comm: Comm, backend: str = "auto", seed: int = 0) -> Params:
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    train_tasks, _ = synthetic.make_tasks(seed)
    demos = {t.name: [synthetic.rollout(t, rng)[0] for _ in range(3)] for t in train_tasks[:6]}
    method = make_method(method_name, {**DMIL_OVERRIDES, "backend": backend})
    model = method.model_config(synthetic.OBS_DIM, synthetic.ACTION_DIM, 3, (32, 32))
    trainer = Trainer(method, model, demos, seed=seed, comm=comm)
    trainer.run(steps)
    return trainer.policy().params


def _rank_main(rank: int, world: int, store: str, out: str, method: str, steps: int, backend: str) -> None:
    dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=world)
    try:
        params = _train(method, steps, Comm.from_group(), backend)
        torch.save(params, Path(out) / f"rank{rank}.pt")
        dist.barrier()  # see Comm.close
    finally:
        dist.destroy_process_group()


def run_check(
    method: str = "dmil", world: int = 2, steps: int = 3, backend: str = "auto"
) -> tuple[list[Params], Params]:
    """(final parameters of each rank, final parameters of the single-process run)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        mp.spawn(_rank_main, args=(world, store, tmp, method, steps, backend), nprocs=world, join=True)
        ranks = [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(world)]
    return ranks, _train(method, steps, Comm(), backend)


def max_difference(a: Params, b: Params) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--method", default="dmil")
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    ranks, single = run_check(a.method, a.world, a.steps)
    print(f"max |rank0 - rank r|: {max(max_difference(ranks[0], r) for r in ranks[1:]):.3g}")
    print(f"max |rank0 - single process|: {max_difference(ranks[0], single):.3g}")


if __name__ == "__main__":
    main()
