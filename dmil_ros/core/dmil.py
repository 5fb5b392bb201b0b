"""One DMIL meta-iteration (paper Algorithm 1), functional with torch.func.

Per task, strictly in this order:
  HI  hard-EM labels from the (frozen) sub-skills on batch 1; one inner step of the high level.
  LI  the adapted high level routes batch 2; each sub-skill takes one inner step on its share.
  HO  query loss of the adapted high level on batch 3 (labels from the adapted sub-skills).
  LO  query loss of the adapted sub-skills on batch 4, routed by the adapted high level.
Meta-gradients of HO (w.r.t. the high level) and LO (w.r.t. the sub-skills) are averaged over the
task batch and applied to both levels in a single optimiser step: neither level is updated before
the other's meta-gradient is computed (section 3.3, "crucial to ensure convergence").

Two implementations of the same maths (`meta_gradients(..., backend=)`): tasks vectorised with
vmap (static shapes, so every sub-skill runs on every state and is masked: the GPU path) and a
per-task loop that sends each state through its routed sub-skill only (`routed.py`, 1/K of the
sub-skill FLOPs: the CPU path). Second-order terms come from differentiating through the inner
`grad` (set `first_order` to drop them).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import grad, vmap

from dmil_ros.core.config import Backend, DMILConfig
from dmil_ros.core.data import MetaBatch
from dmil_ros.core.losses import (
    em_labels,
    high_level_loss,
    one_hot_argmax,
    skill_sq_errors,
    sub_skill_loss,
)
from dmil_ros.core.networks import Params, high_logits, split
from dmil_ros.core.routed import inner_sgd, routed_meta_gradients


def task_outer_loss(
    params: Params, obs: Tensor, act: Tensor, next_same: Tensor, cfg: DMILConfig
) -> tuple[Tensor, dict[str, Tensor]]:
    """HI, LI, HO, LO for one task; returns L_HO + L_LO and diagnostics.

    L_HO depends on the high level only (its labels are detached) and L_LO on the sub-skills only
    (routing is an argmax), so the gradient of the sum gives each level exactly its own
    meta-gradient.
    """
    high, low = split(params)
    lam = cfg.continuity_weight

    # HI
    if cfg.meta_learn_high and cfg.inner_lr_high > 0:
        labels1 = em_labels(skill_sq_errors(low, obs[0], act[0]), cfg.label_mode, cfg.soft_temperature)
        g_high = grad(high_level_loss)(high, obs[0], labels1, next_same, lam)
        high_a = inner_sgd(high, g_high, cfg.inner_lr_high, cfg.first_order)
    else:
        high_a = high

    # LI
    if cfg.meta_learn_low and cfg.inner_lr_low > 0:
        route2 = one_hot_argmax(high_logits(high_a, obs[1]).detach())
        g_low = grad(sub_skill_loss)(low, obs[1], act[1], route2)
        low_a = inner_sgd(low, g_low, cfg.inner_lr_low, cfg.first_order)
    else:
        low_a = low

    # HO
    labels3 = em_labels(skill_sq_errors(low_a, obs[2], act[2]), cfg.label_mode, cfg.soft_temperature)
    loss_ho = high_level_loss(high_a, obs[2], labels3, next_same, lam)

    # LO
    route4 = one_hot_argmax(high_logits(high_a, obs[3]).detach())
    loss_lo = sub_skill_loss(low_a, obs[3], act[3], route4)
    # The LO loss sums per-skill means; report the routed action MSE for readability.
    routed_mse = (skill_sq_errors(low_a, obs[3], act[3]).detach() * route4.transpose(0, 1)).sum(0).mean()
    aux = {
        "loss_ho": loss_ho.detach(),
        "loss_lo": loss_lo.detach(),
        "routed_mse": routed_mse,
        "empty_skills": (route4.sum(0) == 0).float().sum(),
        "skill_share": route4.mean(0),
    }
    return loss_ho + loss_lo, aux


# Below this hidden width the CPU work is per-op overhead, which vmap amortises over tasks; above it
# the matmuls dominate and routing saves (K-1)/K of the sub-skill FLOPs (bench/meta_step.py, 1 thread:
# width 64 vmap 53 ms vs routed 60 ms; 128: 213 vs 106 ms; 256: 503 vs 257 ms).
ROUTED_MIN_WIDTH = 128


def resolve_backend(backend: Backend, device: torch.device, width: int) -> str:
    """`auto`: vmap on accelerators (launch-bound) and for nets narrower than ROUTED_MIN_WIDTH (the
    sub-skills' first hidden width); routed on CPU otherwise."""
    if backend == "auto":
        return "routed" if device.type == "cpu" and width >= ROUTED_MIN_WIDTH else "vmap"
    if backend not in ("vmap", "routed"):
        raise ValueError(f"unknown meta-gradient backend {backend!r}; choose auto, vmap or routed")
    return backend


def meta_gradients(
    params: Params, batch: MetaBatch, cfg: DMILConfig, backend: Backend | None = None
) -> tuple[Params, dict[str, Tensor]]:
    """Meta-gradients of both levels at the *same* parameters, averaged over the task batch.

    `backend` (default: `cfg.backend`) picks the implementation; all give the same gradients.
    The returned diagnostics are detached tensors (scalars, and `skill_share` of shape (K,)).
    """
    width = params["low.0.weight"].shape[1]
    if resolve_backend(backend or cfg.backend, batch.obs.device, width) == "routed":
        return routed_meta_gradients(params, batch, cfg)

    def mean_outer_loss(p: Params) -> tuple[Tensor, dict[str, Tensor]]:
        losses, aux = vmap(task_outer_loss, in_dims=(None, 0, 0, None, None))(
            p, batch.obs, batch.act, batch.next_same, cfg
        )
        return losses.mean(), {k: v.mean(0) for k, v in aux.items()}

    grads, aux = grad(mean_outer_loss, has_aux=True)(params)
    return grads, aux


class DMILTrainer:
    """Owns the meta-parameters and one Adam optimiser over *both* levels."""

    def __init__(self, params: Params, cfg: DMILConfig) -> None:
        self.cfg = cfg
        self.params: Params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=cfg.outer_lr)
        k = self.params["low.0.weight"].shape[0]
        self.share_ema = torch.full((k,), 1.0 / k)
        self.starved = torch.zeros(k, dtype=torch.long)
        self.revived = 0
        self.iterations = 0  # optimiser steps taken (for `high_first_iterations`)

    def step(self, batch: MetaBatch) -> dict[str, float]:
        grads, aux = meta_gradients({k: v.detach() for k, v in self.params.items()}, batch, self.cfg)
        return self.apply(grads, aux, batch)

    def apply(self, grads: Params, aux: dict[str, Tensor], batch: MetaBatch) -> dict[str, float]:
        """Apply meta-gradients of both levels in one Adam step (then revive starved skills).

        Split from `step` so that a distributed trainer can average `grads`/`aux` across ranks first.
        """
        high_only = self.iterations < self.cfg.high_first_iterations
        for name, p in self.params.items():
            # No gradient at all (not a zero one) keeps a held sub-skill out of Adam's moments, so
            # its first real step is an ordinary first Adam step.
            p.grad = None if high_only and name.startswith("low.") else grads[name]
        self.optimizer.step()  # one step: high level and sub-skills move together
        self.optimizer.zero_grad(set_to_none=True)
        self.iterations += 1
        aux = dict(aux)
        share = aux.pop("skill_share").detach().cpu()
        if self.cfg.revive_dead_skills:
            self._revive_starved_skills(share, batch)
        metrics = {k: float(v) for k, v in aux.items()}
        metrics["revived_skills"] = float(self.revived)
        return metrics

    def _revive_starved_skills(self, share: Tensor, batch: MetaBatch) -> None:
        with torch.no_grad():
            self.share_ema = 0.9 * self.share_ema + 0.1 * share
            starved = self.share_ema < self.cfg.dead_skill_share
            self.starved = torch.where(starved, self.starved + 1, torch.zeros_like(self.starved))
        for dead in torch.nonzero(self.starved >= self.cfg.dead_skill_patience).flatten().tolist():
            self._reseed_skill(dead, batch)
            self.share_ema[dead] = self.cfg.dead_skill_share * 2  # give it time to win states
            self.starved[dead] = 0
            self.revived += 1

    def _reseed_skill(self, dead: int, batch: MetaBatch, steps: int = 100) -> None:
        """Fit the starved skill to the states the hierarchy currently predicts worst.

        Starting from the busiest skill and specialising it on those states makes it strictly better
        there. They cluster where existing skills are poor, so after the fit the skill wins them in
        the next E-steps with a state-structured pattern the high level can learn to route.
        """
        high, low = split({k: v.detach() for k, v in self.params.items()})
        obs = batch.obs[:, 3].reshape(-1, batch.obs.shape[-1])
        act = batch.act[:, 3].reshape(-1, batch.act.shape[-1])
        with torch.no_grad():
            route = one_hot_argmax(high_logits(high, obs))
            err = (skill_sq_errors(low, obs, act) * route.transpose(0, 1)).sum(0)
            worst = err.topk(max(1, len(err) // 5)).indices
        donor = int(self.share_ema.argmax())  # start from the busiest skill: already decent everywhere
        one = {k: v[donor : donor + 1].clone().requires_grad_(True) for k, v in low.items()}
        opt = torch.optim.Adam(list(one.values()), lr=1e-3)
        for _ in range(steps):
            loss = skill_sq_errors(one, obs[worst], act[worst]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            for name, p in self.params.items():
                if name in one:
                    p[dead] = one[name][0]
                    state = self.optimizer.state.get(p, {})
                    for key in ("exp_avg", "exp_avg_sq"):
                        if key in state:
                            state[key][dead] = 0.0

    def current(self) -> Params:
        return {k: v.detach().clone() for k, v in self.params.items()}
