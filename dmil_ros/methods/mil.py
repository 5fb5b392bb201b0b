"""MIL baseline: one monolithic MLP policy meta-trained with MAML behaviour cloning (torch.func).

Same loop structure as DMIL: per task, inner SGD step(s) on the first two window batches (the
states DMIL uses for HI and LI), query loss on the last two (HO and LO), meta-gradients averaged
over the task batch and applied with Adam at `outer_lr`. Inner learning rate and first/second order
come from the DMIL config (`inner_lr_low`, `first_order`); adaptation is `adapt.steps` full-batch
SGD steps at `adapt.lr` on the k demos, mirroring DMIL's fine-tuning budget.

The paper's MIL is a transformer conditioned on the demos; this MLP keeps the comparison about the
hierarchy (same network and budget) rather than about the architecture.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor
from torch.func import grad, grad_and_value, vmap

from dmil_ros.core.data import Demo, MetaBatch, concat_demos, validate_demos
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.losses import skill_sq_errors
from dmil_ros.core.networks import Params, split
from dmil_ros.methods.base import Adaptation, Method, Trainer
from dmil_ros.methods.distributed import Comm, GradientTrainer


def bc_loss(low: Params, obs: Tensor, act: Tensor) -> Tensor:
    """Action MSE of the single sub-skill of a K=1 policy."""
    return skill_sq_errors(low, obs, act)[0].mean()


def sgd_steps(low: Params, obs: Tensor, act: Tensor, lr: float, steps: int, first_order: bool) -> Params:
    for _ in range(steps):
        g = grad(bc_loss)(low, obs, act)
        low = {k: v - lr * (g[k].detach() if first_order else g[k]) for k, v in low.items()}
    return low


def mil_task_loss(
    low: Params, obs: Tensor, act: Tensor, inner_lr: float, inner_steps: int, first_order: bool
) -> Tensor:
    """Query loss after the inner steps; obs (4, N, obs_dim), act (4, N, action_dim) for one task."""
    support_obs, support_act = obs[:2].reshape(-1, obs.shape[-1]), act[:2].reshape(-1, act.shape[-1])
    query_obs, query_act = obs[2:].reshape(-1, obs.shape[-1]), act[2:].reshape(-1, act.shape[-1])
    adapted = sgd_steps(low, support_obs, support_act, inner_lr, inner_steps, first_order)
    return bc_loss(adapted, query_obs, query_act)


def mil_gradients(
    params: Params, batch: MetaBatch, inner_lr: float, inner_steps: int, first_order: bool
) -> tuple[Params, dict[str, Tensor]]:
    """MAML meta-gradient of the sub-skill parameters, averaged over the tasks of `batch`."""
    _, low = split(params)
    task_loss = partial(mil_task_loss, inner_lr=inner_lr, inner_steps=inner_steps, first_order=first_order)

    def mean_loss(p: Params) -> Tensor:
        return vmap(task_loss, in_dims=(None, 0, 0))(p, batch.obs, batch.act).mean()

    grads, loss = grad_and_value(mean_loss)(low)
    return grads, {"loss": loss.detach(), "routed_mse": loss.detach()}


class MILMethod(Method):
    monolithic = True

    def make_trainer(self, params: Params, comm: Comm) -> Trainer:
        fn = partial(
            mil_gradients,
            inner_lr=self.dmil.inner_lr_low,
            inner_steps=self.baseline.mil_inner_steps,
            first_order=self.dmil.first_order,
        )
        return GradientTrainer(params, fn, self.dmil.outer_lr, "low.", comm)

    def adapt(self, policy: Hierarchy | None, demos: Sequence[Demo], seed: int = 0) -> Adaptation:
        if policy is None:
            raise ValueError("mil needs a meta-trained checkpoint to adapt")
        t0 = time.perf_counter()
        validate_demos(demos, policy.config.obs_dim, policy.config.action_dim)
        obs_np, act_np, _ = concat_demos(demos)
        obs, act = policy.normalize(obs_np), torch.from_numpy(act_np).to(policy.device)
        high, low = split({k: v.detach() for k, v in policy.params.items()})
        cfg = self.dmil.adapt
        adapted = sgd_steps(low, obs, act, cfg.lr, cfg.steps, first_order=True)
        with torch.no_grad():
            before, after = float(bc_loss(low, obs, act)), float(bc_loss(adapted, obs, act))
        out = Hierarchy(
            policy.config, {**high, **{k: v.detach() for k, v in adapted.items()}}, policy.normalizer
        )
        return Adaptation(out, before, after, time.perf_counter() - t0)
