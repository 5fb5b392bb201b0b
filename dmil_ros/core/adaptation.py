"""Few-shot adaptation of the whole hierarchy to a new task (test-time HI/LI alternation).

Each step is one first-order HI step (EM labels from the current sub-skills, SGD on the high level)
followed by one LI step (route the demo states with the adapted high level, SGD on each sub-skill's
share), as in the official evaluation. A result whose loss is NaN or worse than before is refused and
the original hierarchy is kept, so a bad demo never destroys what was learned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dmil_ros.core.config import AdaptConfig
from dmil_ros.core.data import Demo, concat_demos, validate_demos
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.losses import em_labels, high_level_loss, skill_sq_errors
from dmil_ros.core.networks import Params, high_logits, split


def _sgd_(params: list[Tensor], grads: tuple[Tensor, ...], lr: float) -> None:
    torch._foreach_add_(params, list(grads), alpha=-lr)


def _high_step_(high: Params, obs: Tensor, labels: Tensor, next_same: Tensor, cfg: AdaptConfig) -> None:
    """HI: one SGD step of the high level on the EM labels, in place."""
    leaves = list(high.values())
    with torch.enable_grad():
        loss = high_level_loss(high, obs, labels, next_same, cfg.continuity_weight)
        grads = torch.autograd.grad(loss, leaves)
    with torch.no_grad():
        _sgd_(leaves, grads, cfg.high_lr)


def _sub_skill_step_(low: Params, obs: Tensor, act: Tensor, route: Tensor, lr: float) -> None:
    """LI: one SGD step of each sub-skill on its own share only (eq. 4), in place; empty shares skip.

    Same update as differentiating `sub_skill_loss`, but each skill runs only on its states: K times
    fewer FLOPs than the masked form that meta-training needs for vmap.
    """
    for k in range(low["low.0.weight"].shape[0]):
        share = torch.nonzero(route == k).flatten()
        if len(share) == 0:
            continue
        with torch.enable_grad():
            one = {name: w[k : k + 1].detach().requires_grad_(True) for name, w in low.items()}
            loss = skill_sq_errors(one, obs[share], act[share]).mean()
            grads = torch.autograd.grad(loss, list(one.values()))
        with torch.no_grad():
            _sgd_([w[k] for w in low.values()], tuple(g[0] for g in grads), lr)


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
) -> AdaptResult:
    """Adapt `hierarchy` to the task shown in `demos`; never modifies `hierarchy` in place.

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

        for _ in range(cfg.steps):
            if cfg.adapt_high:  # HI
                labels = em_labels(errors, cfg.label_mode, 0.1)
                _high_step_(high, obs, labels, next_same, cfg)
                route = high_logits(high, obs).argmax(-1)
            if cfg.adapt_low:  # LI
                _sub_skill_step_(low, obs, act, route, cfg.lr)
                errors = skill_sq_errors(low, obs, act)

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
