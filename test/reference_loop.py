"""A straightforward DMIL meta-gradient: per-task Python loop, one module per sub-skill, autograd.

This mirrors how the official DMIL code is organised (a loop over tasks and over sub-skills with
`torch.autograd.grad(create_graph=True)`). It is kept as an independent reference: tests check the
vectorised `dmil.meta_gradients` against it, and bench/meta_step.py measures the speed-up.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dmil_ros.core.config import DMILConfig, ModelConfig
from dmil_ros.core.data import MetaBatch
from dmil_ros.core.networks import Params


def _mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    sizes = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ReferenceDMIL:
    """K+1 ordinary nn.Modules holding the same weights as a stacked `Params` dict."""

    def __init__(self, cfg: ModelConfig, params: Params) -> None:
        self.k = cfg.num_skills
        self.high = _mlp(cfg.obs_dim, cfg.hidden_sizes, cfg.num_skills)
        self.skills = [_mlp(cfg.obs_dim, cfg.hidden_sizes, cfg.action_dim) for _ in range(self.k)]
        linear_high = [m for m in self.high if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for i, lin in enumerate(linear_high):
                lin.weight.copy_(params[f"high.{i}.weight"])
                lin.bias.copy_(params[f"high.{i}.bias"])
            for k, skill in enumerate(self.skills):
                for i, lin in enumerate(m for m in skill if isinstance(m, nn.Linear)):
                    lin.weight.copy_(params[f"low.{i}.weight"][k])
                    lin.bias.copy_(params[f"low.{i}.bias"][k])
        for p in self.parameters():
            p.to(params["high.0.weight"].dtype)

    def parameters(self) -> list[Tensor]:
        ps = list(self.high.parameters())
        for s in self.skills:
            ps += list(s.parameters())
        return ps

    @staticmethod
    def _forward(module: nn.Sequential, weights: list[Tensor], x: Tensor) -> Tensor:
        i = 0
        for m in module:
            if isinstance(m, nn.Linear):
                x = torch.nn.functional.linear(x, weights[i], weights[i + 1])
                i += 2
            else:
                x = m(x)
        return x

    def _high_loss(
        self, w: list[Tensor], obs: Tensor, labels: Tensor, next_same: Tensor, lam: float
    ) -> Tensor:
        logp = torch.log_softmax(self._forward(self.high, w, obs), -1)
        loss = -(labels * logp).sum(-1).mean()
        if lam > 0:
            p = logp.exp()
            stay = (p[:-1] * p[1:]).sum(-1)
            loss = loss + lam * ((1 - stay) * next_same).sum() / next_same.sum().clamp(min=1.0)
        return loss

    def _labels(self, skill_w: list[list[Tensor]], obs: Tensor, act: Tensor, cfg: DMILConfig) -> Tensor:
        with torch.no_grad():
            err = torch.stack(
                [((self._forward(s, w, obs) - act) ** 2).mean(-1) for s, w in zip(self.skills, skill_w)], -1
            )
        if cfg.label_mode == "hard":
            return torch.nn.functional.one_hot(err.argmin(-1), self.k).to(obs.dtype)
        return torch.softmax(-err / cfg.soft_temperature, -1)

    def _route(self, high_w: list[Tensor], obs: Tensor) -> Tensor:
        with torch.no_grad():
            return self._forward(self.high, high_w, obs).argmax(-1)

    def _skill_loss(self, k: int, w: list[Tensor], obs: Tensor, act: Tensor, route: Tensor) -> Tensor | None:
        share = route == k
        if not bool(share.any()):
            return None  # empty share: this skill is not updated
        return ((self._forward(self.skills[k], w, obs[share]) - act[share]) ** 2).mean(-1).mean()

    def meta_gradients(self, batch: MetaBatch, cfg: DMILConfig) -> list[Tensor]:
        """Gradients for `self.parameters()` (high first, then each skill), averaged over tasks."""
        high_p = list(self.high.parameters())
        skill_p = [list(s.parameters()) for s in self.skills]
        all_p = high_p + [p for ps in skill_p for p in ps]
        total = [torch.zeros_like(p) for p in all_p]
        create = not cfg.first_order
        lam = cfg.continuity_weight
        n_tasks = batch.obs.shape[0]
        for t in range(n_tasks):
            obs, act = batch.obs[t], batch.act[t]
            # HI
            if cfg.meta_learn_high and cfg.inner_lr_high > 0:
                labels = self._labels(skill_p, obs[0], act[0], cfg)
                loss = self._high_loss(high_p, obs[0], labels, batch.next_same, lam)
                g = torch.autograd.grad(loss, high_p, create_graph=create)
                high_a = [p - cfg.inner_lr_high * gi for p, gi in zip(high_p, g)]
            else:
                high_a = high_p
            # LI
            skill_a = []
            route2 = self._route(high_a, obs[1])
            for k in range(self.k):
                loss_k = self._skill_loss(k, skill_p[k], obs[1], act[1], route2)
                if loss_k is None or not (cfg.meta_learn_low and cfg.inner_lr_low > 0):
                    skill_a.append(skill_p[k])
                    continue
                g = torch.autograd.grad(loss_k, skill_p[k], create_graph=create)
                skill_a.append([p - cfg.inner_lr_low * gi for p, gi in zip(skill_p[k], g)])
            # HO
            labels3 = self._labels(skill_a, obs[2], act[2], cfg)
            loss_ho = self._high_loss(high_a, obs[2], labels3, batch.next_same, lam)
            grads = list(torch.autograd.grad(loss_ho, high_p))
            # LO
            route4 = self._route(high_a, obs[3])
            for k in range(self.k):
                loss_k = self._skill_loss(k, skill_a[k], obs[3], act[3], route4)
                if loss_k is None:
                    grads += [torch.zeros_like(p) for p in skill_p[k]]
                else:
                    grads += list(torch.autograd.grad(loss_k, skill_p[k]))
            total = [a + b / n_tasks for a, b in zip(total, grads)]
        return total

    def as_params_grads(self, grads: list[Tensor], like: Params) -> Params:
        """Re-stack per-module gradients into the `Params` layout for comparison."""
        n_high = len(list(self.high.parameters()))
        out: Params = {}
        for i in range(n_high // 2):
            out[f"high.{i}.weight"], out[f"high.{i}.bias"] = grads[2 * i], grads[2 * i + 1]
        rest = grads[n_high:]
        per_skill = len(rest) // self.k
        for i in range(per_skill // 2):
            out[f"low.{i}.weight"] = torch.stack([rest[k * per_skill + 2 * i] for k in range(self.k)])
            out[f"low.{i}.bias"] = torch.stack([rest[k * per_skill + 2 * i + 1] for k in range(self.k)])
        assert out.keys() == like.keys()
        return out
