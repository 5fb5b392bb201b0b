"""Few-shot adaptation of the whole hierarchy to a new task (test-time HI/LI alternation).

Each step is one first-order HI step (EM labels from the current sub-skills, SGD on the high level)
followed by one LI step (route the demo states with the adapted high level, SGD on each sub-skill's
share), as in the official evaluation; `AdaptConfig.optimizer: adam` takes Adam steps instead.
A result whose loss is NaN or worse than before is refused and the original hierarchy is kept, so a
bad demo never destroys what was learned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dmil_ros.core.config import AdaptConfig
from dmil_ros.core.data import Demo, concat_demos, validate_demos
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.losses import em_labels, high_level_loss, skill_sq_errors
from dmil_ros.core.networks import Params, high_logits, split


class _Stepper:
    """Applies a level's gradients in place: plain SGD, or Adam (its moments kept across steps)."""

    def __init__(self, params: list[Tensor], lr: float, optimizer: str) -> None:
        self.params, self.lr = params, lr
        self.adam = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else None

    def step_(self, grads: Sequence[Tensor]) -> None:
        if self.adam is None:
            torch._foreach_add_(self.params, list(grads), alpha=-self.lr)
            return
        for p, g in zip(self.params, grads):
            p.grad = g
        self.adam.step()


def _high_grads(
    high: Params, obs: Tensor, labels: Tensor, next_same: Tensor, cfg: AdaptConfig
) -> tuple[Tensor, ...]:
    """HI: the high level's gradient of the label loss (sub-skills frozen)."""
    with torch.enable_grad():
        loss = high_level_loss(high, obs, labels, next_same, cfg.continuity_weight)
        return torch.autograd.grad(loss, list(high.values()))


def _sub_skill_grads(low: Params, obs: Tensor, act: Tensor, route: Tensor) -> list[Tensor]:
    """LI: each sub-skill's gradient on its own share only (eq. 4); an empty share gives zeros (which
    leave an SGD step's skill as it is; Adam's momentum still carries it on for a while).

    Same gradient as differentiating `sub_skill_loss`, but each skill runs only on its states: K times
    fewer FLOPs than the masked form that meta-training needs for vmap.
    """
    grads = [torch.zeros_like(w) for w in low.values()]
    for k in range(low["low.0.weight"].shape[0]):
        share = torch.nonzero(route == k).flatten()
        if len(share) == 0:
            continue
        with torch.enable_grad():
            one = {name: w[k : k + 1].detach().requires_grad_(True) for name, w in low.items()}
            loss = skill_sq_errors(one, obs[share], act[share]).mean()
            for full, g in zip(grads, torch.autograd.grad(loss, list(one.values()))):
                full[k] = g[0]
    return grads


@dataclass(frozen=True)
class AdaptResult:
    hierarchy: Hierarchy  # the adapted hierarchy, or the original one when not accepted
    accepted: bool
    reason: str
    num_demos: int
    num_states: int
    steps: int
    loss_before: float  # routed action MSE on the demos
    loss_after: float
    seconds: float
    skill_counts: tuple[int, ...]  # states routed to each sub-skill after adaptation


def adapt(
    hierarchy: Hierarchy,
    demos: Sequence[Demo],
    cfg: AdaptConfig | None = None,
    divergence_tolerance: float = 0.05,
    progress: Callable[[int, int, float], None] | None = None,
) -> AdaptResult:
    """Adapt `hierarchy` to the task shown in `demos`; never modifies `hierarchy` in place.

    `progress(step, steps, loss)` is called after each step with the routed action MSE so far.
    Raises DemoError for unusable demos (empty, wrong dims, NaN).
    """
    cfg = cfg or AdaptConfig()
    t0 = time.perf_counter()
    mc = hierarchy.config
    validate_demos(demos, mc.obs_dim, mc.action_dim)
    obs_np, act_np, mask_np = concat_demos(demos)
    dev = hierarchy.device
    obs = hierarchy.normalize(obs_np)
    act = torch.from_numpy(act_np).to(dev)
    next_same = torch.from_numpy(mask_np).to(dev)

    # Work on private leaf copies updated in place: no graph outlives a step (first-order steps).
    high, low = split({k: v.detach().clone().requires_grad_(True) for k, v in hierarchy.params.items()})
    with torch.no_grad():
        errors = skill_sq_errors(low, obs, act)  # (K, N), reused by the first HI step
        route = high_logits(high, obs).argmax(-1)
        before = float(errors.gather(0, route.unsqueeze(0)).mean())

        high_stepper = _Stepper(list(high.values()), cfg.high_lr, cfg.optimizer)
        low_stepper = _Stepper(list(low.values()), cfg.lr, cfg.optimizer)
        for step in range(cfg.steps):
            if cfg.adapt_high:  # HI
                labels = em_labels(errors, cfg.label_mode, 0.1)
                high_stepper.step_(_high_grads(high, obs, labels, next_same, cfg))
                route = high_logits(high, obs).argmax(-1)
            if cfg.adapt_low:  # LI
                low_stepper.step_(_sub_skill_grads(low, obs, act, route))
                errors = skill_sq_errors(low, obs, act)
            if progress is not None:
                progress(step + 1, cfg.steps, float(errors.gather(0, route.unsqueeze(0)).mean()))

        after = float(errors.gather(0, route.unsqueeze(0)).mean())
        counts = torch.bincount(route, minlength=mc.num_skills).tolist()
        params = {k: v.detach() for k, v in {**high, **low}.items()}
        # A non-finite parameter makes its tensor's sum non-finite: one cheap reduction per tensor.
        finite = bool(torch.isfinite(torch.stack([v.sum() for v in params.values()])).all())
        finite = finite and bool(np.isfinite(after))
    if not finite:
        accepted, reason = False, "adaptation diverged (non-finite parameters or loss); kept the previous one"
    elif after > before * (1 + divergence_tolerance) + 1e-8:
        accepted, reason = False, f"loss increased {before:.4g} -> {after:.4g}; kept the previous hierarchy"
    else:
        accepted, reason = True, "ok"
    result_h = Hierarchy(mc, params, hierarchy.normalizer) if accepted else hierarchy
    return AdaptResult(
        hierarchy=result_h,
        accepted=accepted,
        reason=reason,
        num_demos=len(demos),
        num_states=len(obs_np),
        steps=cfg.steps,
        loss_before=before,
        loss_after=after,
        seconds=time.perf_counter() - t0,
        skill_counts=tuple(int(c) for c in counts),
    )
