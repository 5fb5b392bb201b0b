"""The learned hierarchy as an object that acts: normaliser + high-level net + K sub-skills."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dmil_ros.core.config import ModelConfig
from dmil_ros.core.data import Normalizer
from dmil_ros.core.networks import Params, high_logits, init_params, skill_actions, split


class ObservationError(ValueError):
    """An observation cannot be fed to the hierarchy; the message says why."""


@dataclass
class Hierarchy:
    config: ModelConfig
    params: Params
    normalizer: Normalizer

    @staticmethod
    def initialize(config: ModelConfig, seed: int = 0, normalizer: Normalizer | None = None) -> Hierarchy:
        return Hierarchy(config, init_params(config, seed), normalizer or Normalizer.identity(config.obs_dim))

    @property
    def device(self) -> torch.device:
        return self.params["high.0.weight"].device

    def to(self, device: torch.device | str) -> Hierarchy:
        return Hierarchy(self.config, {k: v.to(device) for k, v in self.params.items()}, self.normalizer)

    def clone(self) -> Hierarchy:
        return Hierarchy(
            self.config, {k: v.detach().clone() for k, v in self.params.items()}, self.normalizer
        )

    def normalize(self, obs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.normalizer(np.asarray(obs, np.float32))).to(self.device)

    def check_observation(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[-1:] != (self.config.obs_dim,):
            raise ObservationError(
                f"observation has shape {obs.shape}, expected (..., {self.config.obs_dim})"
            )
        if not np.isfinite(obs).all():
            raise ObservationError("observation contains NaN or infinite values")
        return obs

    @torch.inference_mode()
    def predict(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batched (N, obs_dim) -> actions (N, A), skills (N,), probabilities (N, K)."""
        x = self.normalize(self.check_observation(obs))
        high, low = split(self.params)
        probs = torch.softmax(high_logits(high, x), -1)
        skills = probs.argmax(-1)
        actions = skill_actions(low, x)[skills, torch.arange(len(x), device=x.device)]
        return actions.cpu().numpy(), skills.cpu().numpy(), probs.cpu().numpy()

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        """One state -> (action, active sub-skill, sub-skill probabilities). Only the chosen skill runs."""
        x = self.normalize(self.check_observation(obs).reshape(1, -1))
        high, low = split(self.params)
        probs = torch.softmax(high_logits(high, x), -1)[0]
        k = int(probs.argmax())
        one = {name: w[k : k + 1] for name, w in low.items()}
        action = skill_actions(one, x)[0, 0]
        return action.cpu().numpy(), k, probs.cpu().numpy()
