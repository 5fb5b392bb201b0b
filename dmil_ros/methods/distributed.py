"""Data-parallel meta-training: every rank holds the same parameters and takes a shard of the tasks.

Each rank samples the *same* full meta-batch (same sampler seed), computes meta-gradients on its
contiguous shard of the tasks, and the shard means are all-reduced into the full-batch mean
(weighted by shard size, so an uneven split is still exact). Every rank then takes the same Adam
step on the same gradient, so the ranks never drift apart and no parameter broadcast is needed.

Runs with one process (no torch.distributed at all) or under torchrun (env:// rendezvous; gloo on
CPU, nccl on GPU).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from dmil_ros.core.config import DMILConfig
from dmil_ros.core.data import MetaBatch
from dmil_ros.core.dmil import DMILTrainer, meta_gradients
from dmil_ros.core.networks import Params

GradFn = Callable[[Params, MetaBatch], tuple[Params, dict[str, Tensor]]]


@dataclass(frozen=True)
class Comm:
    """This process's place in the job; `world_size == 1` means no torch.distributed calls at all."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we called init_process_group, so we tear it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, n: int) -> slice:
        """Contiguous share of `n` items for this rank (sizes differ by at most one)."""
        if n < self.world_size:
            raise ValueError(f"{n} tasks per batch cannot be shared by {self.world_size} ranks")
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def all_reduce_sum_(self, t: Tensor) -> Tensor:
        if self.distributed:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            # Every rank is done before any tears its connections down: a gloo rank whose peer left
            # mid-exchange dies in std::terminate (SIGABRT, seen in the 2-rank check).
            dist.barrier()
            dist.destroy_process_group()

    @staticmethod
    def from_env(use_cuda: bool) -> Comm:
        """Join the torchrun job described by RANK/WORLD_SIZE/LOCAL_RANK, or run alone."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return Comm()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local)  # nccl needs each rank on its own device before init
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://")
            return Comm(rank, world, local, owns_group=True)
        return Comm(rank, world, local)

    @staticmethod
    def from_group() -> Comm:
        """Wrap a process group someone else initialised (tests use a FileStore)."""
        if not dist.is_initialized():
            return Comm()
        return Comm(dist.get_rank(), dist.get_world_size(), dist.get_rank())


def reduce_gradients(
    comm: Comm, grads: Mapping[str, Tensor], aux: Mapping[str, Tensor], weight: float
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Weighted sum over ranks of gradients and diagnostics, in one all_reduce of a flat buffer."""
    if not comm.distributed:
        return dict(grads), dict(aux)
    tensors = {**{f"g/{k}": v for k, v in grads.items()}, **{f"a/{k}": v.detach() for k, v in aux.items()}}
    flat = torch.cat([v.reshape(-1).float() for v in tensors.values()]) * weight
    comm.all_reduce_sum_(flat)
    out, offset = {}, 0
    for name, v in tensors.items():
        out[name] = flat[offset : offset + v.numel()].view_as(v).to(v.dtype)
        offset += v.numel()
    return (
        {k[2:]: v for k, v in out.items() if k.startswith("g/")},
        {k[2:]: v for k, v in out.items() if k.startswith("a/")},
    )


def local_shard(comm: Comm, batch: MetaBatch) -> tuple[MetaBatch, float]:
    """This rank's tasks of the meta-batch and their share of the batch (the all-reduce weight)."""
    n = batch.obs.shape[0]
    sl = comm.shard(n)
    part = MetaBatch(batch.obs[sl], batch.act[sl], batch.next_same)
    return part, (sl.stop - sl.start) / n


class DistributedDMILTrainer(DMILTrainer):
    """`DMILTrainer` whose meta-gradients are averaged over the ranks before its single Adam step.

    With one process it computes exactly what `DMILTrainer.step` does. Dead-skill revival runs on
    every rank with the globally averaged skill shares and the full (identical) batch, so it makes
    the same decision and the same re-seeded weights everywhere.
    """

    def __init__(self, params: Params, cfg: DMILConfig, comm: Comm | None = None) -> None:
        super().__init__(params, cfg)
        self.comm = comm or Comm()

    def step(self, batch: MetaBatch) -> dict[str, float]:
        part, weight = local_shard(self.comm, batch)
        detached = {k: v.detach() for k, v in self.params.items()}
        grads, aux = meta_gradients(detached, part, self.cfg)
        grads, aux = reduce_gradients(self.comm, grads, aux, weight)
        return self.apply(grads, aux, batch)


class GradientTrainer:
    """Adam on the parameters a gradient function returns gradients for, averaged over ranks.

    Used by the monolithic baselines (MIL's MAML meta-gradient, multi-task BC's plain gradient):
    parameters without a gradient (the unused high level of a K=1 policy) are left untouched.
    """

    def __init__(
        self, params: Params, grad_fn: GradFn, lr: float, trainable_prefix: str, comm: Comm | None = None
    ):
        self.params: Params = {
            k: v.detach().clone().requires_grad_(k.startswith(trainable_prefix)) for k, v in params.items()
        }
        self.trainable = {k: v for k, v in self.params.items() if k.startswith(trainable_prefix)}
        if not self.trainable:
            raise ValueError(f"no parameter starts with {trainable_prefix!r}")
        self.optimizer = torch.optim.Adam(list(self.trainable.values()), lr=lr)
        self.grad_fn = grad_fn
        self.comm = comm or Comm()

    def step(self, batch: MetaBatch) -> dict[str, float]:
        part, weight = local_shard(self.comm, batch)
        grads, aux = self.grad_fn({k: v.detach() for k, v in self.params.items()}, part)
        grads, aux = reduce_gradients(self.comm, grads, aux, weight)
        for name, p in self.trainable.items():
            p.grad = grads[name]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {k: float(v) for k, v in aux.items()}

    def current(self) -> Params:
        return {k: v.detach().clone() for k, v in self.params.items()}
