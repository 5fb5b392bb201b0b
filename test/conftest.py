"""Shared fixtures: small problem sizes so the core tests stay fast on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch

from dmil_ros.core.config import ModelConfig
from dmil_ros.core.data import MetaBatch
from dmil_ros.core.networks import Params, init_params


def random_meta_batch(
    tasks: int, windows: int, length: int, obs_dim: int, act_dim: int, seed: int, dtype: torch.dtype
) -> MetaBatch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(tasks, 4, windows * length, obs_dim, generator=g, dtype=dtype)
    act = torch.randn(tasks, 4, windows * length, act_dim, generator=g, dtype=dtype)
    next_same = torch.ones(windows * length - 1, dtype=dtype)
    next_same[length - 1 :: length] = 0
    return MetaBatch(obs, act, next_same)


@pytest.fixture
def make_batch():
    return random_meta_batch


@pytest.fixture
def tiny_model() -> ModelConfig:
    return ModelConfig(obs_dim=5, action_dim=2, num_skills=3, hidden_sizes=(16, 16))


@pytest.fixture
def tiny_params64(tiny_model: ModelConfig) -> Params:
    return {k: v.double() for k, v in init_params(tiny_model, seed=0).items()}


@pytest.fixture
def batch64() -> MetaBatch:
    return random_meta_batch(3, 2, 6, 5, 2, seed=0, dtype=torch.float64)
