"""The losses of DMIL's four steps, written as pure functions of parameter dicts.

States come flattened, (N, obs_dim), with `next_same` (N-1,) marking which consecutive pairs belong
to the same trajectory: batches are made of contiguous windows so that the continuity loss sees
real successor states.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dmil_ros.core.networks import Params, high_logits, skill_actions


def skill_sq_errors(low: Params, obs: Tensor, act: Tensor) -> Tensor:
    """(K, N) mean squared action error of every sub-skill on every state (Gaussian, fixed variance)."""
    return (skill_actions(low, obs) - act.unsqueeze(0)).pow(2).mean(-1)


def one_hot_argmax(scores: Tensor) -> Tensor:
    """(N, K) -> (N, K) one-hot of the row-wise argmax; vmap-friendly (no data-dependent shapes)."""
    idx = scores.argmax(-1, keepdim=True)
    return torch.zeros_like(scores).scatter(-1, idx, 1.0)


def em_labels(errors: Tensor, mode: str, temperature: float) -> Tensor:
    """Sub-skill labels (N, K) from per-skill errors (K, N), without gradient.

    Hard EM (the paper): the skill that predicts the expert action best gets the state.
    Soft EM (DMIL-Soft): a softmax over negative errors.
    """
    errors = errors.detach().transpose(0, 1)
    if mode == "hard":
        return one_hot_argmax(-errors)
    return torch.softmax(-errors / temperature, dim=-1)


def continuity_loss(probs: Tensor, next_same: Tensor) -> Tensor:
    """Expected probability of switching sub-skill between consecutive states of a trajectory.

    The paper's loss counts switches of the argmax, whose gradient is zero almost everywhere (so it
    never trains anything). P(z_t != z_{t+1}) = 1 - sum_k p_t(k) p_{t+1}(k) has the same minimiser
    (no switches, confident predictions) and a useful gradient.
    """
    stay = (probs[:-1] * probs[1:]).sum(-1)
    pairs = next_same.sum().clamp(min=1.0)
    return ((1.0 - stay) * next_same).sum() / pairs


def high_level_loss(
    high: Params, obs: Tensor, labels: Tensor, next_same: Tensor, continuity_weight: float
) -> Tensor:
    """Cross-entropy of the high-level classifier against EM labels, plus the continuity term."""
    logp = torch.log_softmax(high_logits(high, obs), dim=-1)
    loss = -(labels * logp).sum(-1).mean()
    if continuity_weight > 0:
        loss = loss + continuity_weight * continuity_loss(logp.exp(), next_same)
    return loss


def sub_skill_loss(low: Params, obs: Tensor, act: Tensor, assignment: Tensor) -> Tensor:
    """Sum over skills of each skill's BC loss on the states routed to it (eq. 4).

    Summing keeps each skill's gradient equal to the gradient of its own loss. A skill with an
    empty share contributes exactly zero, so its inner step leaves it unchanged.
    """
    errors = skill_sq_errors(low, obs, act)  # (K, N)
    counts = assignment.sum(0)  # (K,)
    per_skill = (errors * assignment.transpose(0, 1)).sum(-1) / counts.clamp(min=1.0)
    return per_skill.sum()
