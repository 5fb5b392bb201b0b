"""DMIL meta-gradients with each state sent through its own sub-skill only: the CPU path.

The vmapped path (`dmil.task_outer_loss`) must keep shapes static, so in LI and LO it runs every
sub-skill on every state and masks: K times the sub-skill FLOPs of the algorithm. On a GPU that is
cheap; on a CPU the matmuls are the whole cost, and a per-task loop that gathers each sub-skill's
share does 1/K of that work (bench/meta_step.py measures both). Same maths, same results: the tests
hold both to the per-module reference loop.

Kept vectorised where no routing is involved: the HI labels of all tasks come from the shared,
un-adapted sub-skills in one batched matmul.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dmil_ros.core.config import DMILConfig
from dmil_ros.core.losses import em_labels, high_level_loss, skill_sq_errors
from dmil_ros.core.networks import Params, high_logits, mlp, split

if TYPE_CHECKING:
    from dmil_ros.core.data import MetaBatch


def _autograd(fn, params: Params, *args, create_graph: bool) -> Params:
    """grad of fn w.r.t. a dict of tensors with plain autograd (cheaper per op than torch.func)."""
    names = list(params)
    grads = torch.autograd.grad(fn(params, *args), [params[n] for n in names], create_graph=create_graph)
    return dict(zip(names, grads))


def inner_sgd(params: Params, grads: Params, lr: float, first_order: bool) -> Params:
    """One inner gradient step; first order drops the gradient's dependence on `params`."""
    if first_order:
        return {k: p - lr * grads[k].detach() for k, p in params.items()}
    return {k: p - lr * grads[k] for k, p in params.items()}


def _one_skill(low: Params, k: int) -> Params:
    """Sub-skill k's weights as an ordinary (unstacked) MLP: same keys, leading K dim selected."""
    return {name: w[k] for name, w in low.items()}


def _skill_mean_error(skill: Params, obs: Tensor, act: Tensor) -> Tensor:
    """Mean squared action error of one (unstacked) sub-skill on its share."""
    return (mlp(skill, "low.", obs) - act).pow(2).mean()


def _stack(skills: list[Params]) -> Params:
    return {name: torch.stack([s[name] for s in skills]) for name in skills[0]}


def _task_outer_loss(
    high: Params,
    skills: list[Params],
    obs: Tensor,
    act: Tensor,
    labels1: Tensor,
    next_same: Tensor,
    cfg: DMILConfig,
) -> tuple[Tensor, dict[str, Tensor]]:
    lam = cfg.continuity_weight
    num_skills = len(skills)

    # HI (labels precomputed: the un-adapted sub-skills are shared by all tasks)
    if cfg.meta_learn_high and cfg.inner_lr_high > 0:
        g_high = _autograd(
            high_level_loss, high, obs[0], labels1, next_same, lam, create_graph=not cfg.first_order
        )
        high_a = inner_sgd(high, g_high, cfg.inner_lr_high, cfg.first_order)
    else:
        high_a = high

    # LI: each sub-skill steps on the states the adapted high level routes to it (empty: no step)
    with torch.no_grad():
        route2 = high_logits(high_a, obs[1]).argmax(-1)
        route4 = high_logits(high_a, obs[3]).argmax(-1)
    low_a: list[Params] = []
    for k, skill in enumerate(skills):
        share = route2 == k
        if cfg.meta_learn_low and cfg.inner_lr_low > 0 and bool(share.any()):
            g = _autograd(
                _skill_mean_error, skill, obs[1][share], act[1][share], create_graph=not cfg.first_order
            )
            skill = inner_sgd(skill, g, cfg.inner_lr_low, cfg.first_order)
        low_a.append(skill)

    # HO: labels from the adapted sub-skills (no gradient through the labels)
    with torch.no_grad():
        adapted = _stack([{n: w.detach() for n, w in s.items()} for s in low_a])
        labels3 = em_labels(skill_sq_errors(adapted, obs[2], act[2]), cfg.label_mode, cfg.soft_temperature)
    loss_ho = high_level_loss(high_a, obs[2], labels3, next_same, lam)

    # LO: sum over sub-skills of each one's mean error on its share (as losses.sub_skill_loss)
    loss_lo = obs.new_zeros(())
    routed_sq = obs.new_zeros(())
    for k in range(num_skills):
        share = route4 == k
        if bool(share.any()):
            err = _skill_mean_error(low_a[k], obs[3][share], act[3][share])
            loss_lo = loss_lo + err
            routed_sq = routed_sq + err.detach() * share.sum()
    counts = torch.bincount(route4, minlength=num_skills).to(obs.dtype)
    aux = {
        "loss_ho": loss_ho.detach(),
        "loss_lo": loss_lo.detach(),
        "routed_mse": routed_sq / route4.numel(),
        "empty_skills": (counts == 0).to(obs.dtype).sum(),
        "skill_share": counts / route4.numel(),
    }
    return loss_ho + loss_lo, aux


def routed_meta_gradients(
    params: Params, batch: MetaBatch, cfg: DMILConfig
) -> tuple[Params, dict[str, Tensor]]:
    """Same contract as `dmil.meta_gradients`: task-averaged meta-gradients of both levels.

    Plain autograd rather than torch.func here: without vmap the transforms buy nothing, and their
    per-op overhead made this path slower than the reference loop at small widths.
    """
    _, low0 = split(params)
    n_tasks, _, n, obs_dim = batch.obs.shape
    with torch.no_grad():
        err1 = skill_sq_errors(
            {k: v.detach() for k, v in low0.items()},
            batch.obs[:, 0].reshape(-1, obs_dim),
            batch.act[:, 0].reshape(n_tasks * n, -1),
        )
        labels1 = em_labels(err1, cfg.label_mode, cfg.soft_temperature).reshape(n_tasks, n, -1)

    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    with torch.enable_grad():
        high, low = split(leaves)
        # Unstacked once, not per task: each selection costs a K-stacked gradient buffer in backward.
        skills = [_one_skill(low, k) for k in range(low["low.0.weight"].shape[0])]
        losses, auxes = [], []
        for t in range(n_tasks):
            loss, aux = _task_outer_loss(
                high, skills, batch.obs[t], batch.act[t], labels1[t], batch.next_same, cfg
            )
            losses.append(loss)
            auxes.append(aux)
        names = list(leaves)
        grads = torch.autograd.grad(torch.stack(losses).mean(), [leaves[n] for n in names], allow_unused=True)
    mean_aux = {k: torch.stack([a[k] for a in auxes]).mean(0) for k in auxes[0]}
    return {n: torch.zeros_like(leaves[n]) if g is None else g for n, g in zip(names, grads)}, mean_aux
