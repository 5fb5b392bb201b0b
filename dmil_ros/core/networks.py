"""Functional networks of the hierarchy.

Parameters live in flat dicts of tensors so that torch.func can differentiate through inner
updates. The K sub-skills are stored *stacked* (leading dim K) and evaluated with one batched
matmul per layer instead of K separate networks: the same maths, far fewer kernel launches.

Names: ``high.{i}.weight`` (out, in) / ``high.{i}.bias`` (out,) for the high-level classifier and
``low.{i}.weight`` (K, out, in) / ``low.{i}.bias`` (K, out) for the sub-skills. No normalisation
layers, so there are no running statistics in the meta-learned path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dmil_ros.core.config import ModelConfig

Params = dict[str, Tensor]


def _layer_sizes(cfg: ModelConfig, out_dim: int) -> list[tuple[int, int]]:
    sizes = [cfg.obs_dim, *cfg.hidden_sizes, out_dim]
    return list(zip(sizes[:-1], sizes[1:]))


def init_params(cfg: ModelConfig, seed: int, device: torch.device | str = "cpu") -> Params:
    """PyTorch's default Linear initialisation, deterministic under `seed`."""
    gen = torch.Generator().manual_seed(seed)

    def linear(fan_in: int, fan_out: int, stack: int | None) -> tuple[Tensor, Tensor]:
        bound = 1.0 / fan_in**0.5
        shape_w = (fan_out, fan_in) if stack is None else (stack, fan_out, fan_in)
        shape_b = (fan_out,) if stack is None else (stack, fan_out)
        w = (torch.rand(shape_w, generator=gen) * 2 - 1) * bound
        b = (torch.rand(shape_b, generator=gen) * 2 - 1) * bound
        return w, b

    params: Params = {}
    for i, (fi, fo) in enumerate(_layer_sizes(cfg, cfg.num_skills)):
        params[f"high.{i}.weight"], params[f"high.{i}.bias"] = linear(fi, fo, None)
    for i, (fi, fo) in enumerate(_layer_sizes(cfg, cfg.action_dim)):
        params[f"low.{i}.weight"], params[f"low.{i}.bias"] = linear(fi, fo, cfg.num_skills)
    return {k: v.to(device) for k, v in params.items()}


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (fi, fo) in enumerate(_layer_sizes(cfg, cfg.num_skills)):
        shapes[f"high.{i}.weight"], shapes[f"high.{i}.bias"] = (fo, fi), (fo,)
    k = cfg.num_skills
    for i, (fi, fo) in enumerate(_layer_sizes(cfg, cfg.action_dim)):
        shapes[f"low.{i}.weight"], shapes[f"low.{i}.bias"] = (k, fo, fi), (k, fo)
    return shapes


def split(params: Params) -> tuple[Params, Params]:
    """(high, low) sub-dicts, keys unchanged."""
    high = {k: v for k, v in params.items() if k.startswith("high.")}
    low = {k: v for k, v in params.items() if k.startswith("low.")}
    return high, low


def _num_layers(params: Params, prefix: str) -> int:
    return sum(1 for k in params if k.startswith(prefix) and k.endswith(".weight"))


def mlp(params: Params, prefix: str, x: Tensor) -> Tensor:
    """An unstacked ReLU MLP from `{prefix}{i}.weight` / `{prefix}{i}.bias`: (..., in) -> (..., out)."""
    n = _num_layers(params, prefix)
    h = x
    for i in range(n):
        h = torch.nn.functional.linear(h, params[f"{prefix}{i}.weight"], params[f"{prefix}{i}.bias"])
        if i < n - 1:
            h = torch.relu(h)
    return h


def high_logits(high: Params, obs: Tensor) -> Tensor:
    """(..., obs_dim) -> (..., K) sub-skill logits."""
    return mlp(high, "high.", obs)


def skill_actions(low: Params, obs: Tensor) -> Tensor:
    """(N, obs_dim) -> (K, N, action_dim): every sub-skill's action mean for every state."""
    n = _num_layers(low, "low.")
    k = low["low.0.weight"].shape[0]
    h = obs.unsqueeze(0).expand(k, *obs.shape)
    for i in range(n):
        w, b = low[f"low.{i}.weight"], low[f"low.{i}.bias"]
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if i < n - 1:
            h = torch.relu(h)
    return h
