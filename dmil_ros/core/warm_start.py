"""Sub-skill warm start: hard-EM mixture of regressions on the pooled demos, before meta-training.

Why. Meta-training from random sub-skills falls into a local optimum of hard EM: the sub-skills split
the *action space* into compromises that each fit parts of several true skills, and the meta-gradient
keeps them there (on the synthetic benchmark no seed out of four gave three clean sub-skills, and
longer training made segmentation worse). Pooled over all training tasks, the demos are a mixture of
regressions: at one state different tasks use different skills, so the actions are multimodal, and
K experts that each take the states they predict best (the same hard-EM rule as DMIL's HI labels)
separate exactly the skills the tasks share. Its objective, the mean over states of the best
sub-skill's error, is label-free and low only for clean skills, so restarts are chosen by it.

The high level is left alone: which skill a state needs depends on the task, so only its
meta-learned, per-task adaptation can route (see `DMILConfig.high_first_iterations` for letting it
learn that before the sub-skills follow its routing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from dmil_ros.core.config import DMILConfig, ModelConfig
from dmil_ros.core.data import Demo, Normalizer, concat_demos
from dmil_ros.core.losses import one_hot_argmax, skill_sq_errors
from dmil_ros.core.networks import Params, init_params, split


def em_loss(low: Params, obs: Tensor, act: Tensor) -> float:
    """Mean over states of the best sub-skill's squared action error (the restart criterion)."""
    with torch.no_grad():
        return float(skill_sq_errors(low, obs, act).min(0).values.mean())


def fit_mixture(
    low: Params, obs: Tensor, act: Tensor, steps: int, lr: float, batch: int, generator: torch.Generator
) -> Params:
    """`steps` Adam steps of hard EM: each state trains only the sub-skill that predicts it best."""
    low = {k: v.detach().clone().requires_grad_(True) for k, v in low.items()}
    opt = torch.optim.Adam(list(low.values()), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, len(obs), (min(batch, len(obs)),), generator=generator, device=obs.device)
        errors = skill_sq_errors(low, obs[idx], act[idx])  # (K, B)
        labels = one_hot_argmax(-errors.detach().transpose(0, 1))  # (B, K)
        # Per-skill mean over its own states, summed: a skill's gradient is that of its own loss.
        loss = ((errors * labels.transpose(0, 1)).sum(1) / labels.sum(0).clamp(min=1.0)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in low.items()}


def warm_start_skills(
    params: Params,
    demos_by_task: Mapping[str, Sequence[Demo]],
    normalizer: Normalizer,
    model_cfg: ModelConfig,
    cfg: DMILConfig,
    seed: int,
) -> tuple[Params, dict[str, float]]:
    """`params` with the sub-skills replaced by the best of `cfg.skill_warm_start_restarts` hard-EM
    fits (by `em_loss`); returns the chosen and every restart's EM loss. Deterministic under `seed`."""
    if cfg.skill_warm_start_steps <= 0:
        return params, {}
    device = params["low.0.weight"].device
    obs_np, act_np, _ = concat_demos([d for demos in demos_by_task.values() for d in demos])
    obs = torch.from_numpy(normalizer(obs_np)).to(device)
    act = torch.from_numpy(act_np).to(device)
    best: tuple[float, Params] | None = None
    losses = {}
    for r in range(cfg.skill_warm_start_restarts):
        # Restart 0 starts from the given sub-skills; the others from fresh initialisations.
        start = split(params)[1] if r == 0 else split(init_params(model_cfg, seed * 1000 + r, device))[1]
        gen = torch.Generator(device=device).manual_seed(seed * 1000 + r)
        low = fit_mixture(start, obs, act, cfg.skill_warm_start_steps, cfg.skill_warm_start_lr,
                          cfg.skill_warm_start_batch, gen)
        losses[f"warm_start_em_loss_{r}"] = loss = em_loss(low, obs, act)
        if best is None or loss < best[0]:
            best = (loss, low)
    assert best is not None
    losses["warm_start_em_loss"] = best[0]
    return {**params, **best[1]}, losses
