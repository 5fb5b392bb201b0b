"""Monolithic behaviour cloning: a hierarchy with a single sub-skill trained by plain MSE.

Used as the "BC from scratch on the k demos" and "multi-task BC pre-trained then fine-tuned"
baselines; with K=1 the high level is trivial, so the same `Hierarchy.act` and checkpoints serve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dmil_ros.core.config import ModelConfig
from dmil_ros.core.data import Demo, Normalizer, concat_demos, validate_demos
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import skill_actions, split


def monolithic_config(obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...]) -> ModelConfig:
    return ModelConfig(obs_dim, action_dim, num_skills=1, hidden_sizes=hidden_sizes)


def train_bc(
    policy: Hierarchy,
    demos: Sequence[Demo],
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[Hierarchy, float]:
    """Adam on the action MSE of sub-skill 0; returns (trained copy, final full-data loss)."""
    if policy.config.num_skills != 1:
        raise ValueError("train_bc expects a monolithic policy (num_skills == 1)")
    validate_demos(demos, policy.config.obs_dim, policy.config.action_dim)
    obs_np, act_np, _ = concat_demos(demos)
    obs = policy.normalize(obs_np)
    act = torch.from_numpy(act_np).to(policy.device)
    trained = policy.clone()
    _, low = split(trained.params)
    for p in low.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(list(low.values()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(obs), (min(batch_size, len(obs)),), generator=gen).to(obs.device)
        loss = (skill_actions(low, obs[idx])[0] - act[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = float((skill_actions(low, obs)[0] - act).pow(2).mean())
    trained.params = {**split(trained.params)[0], **{k: v.detach() for k, v in low.items()}}
    return trained, final


def new_bc_policy(
    obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...], normalizer: Normalizer | None, seed: int
) -> Hierarchy:
    return Hierarchy.initialize(monolithic_config(obs_dim, action_dim, hidden_sizes), seed, normalizer)


def action_mse(policy: Hierarchy, demos: Sequence[Demo]) -> float:
    """Mean squared error of the policy's actions on the demo states (as it would act)."""
    obs, act, _ = concat_demos(demos)
    pred, _, _ = policy.predict(obs)
    return float(np.mean((pred - act) ** 2))
