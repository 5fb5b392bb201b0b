"""Demonstrations in memory, their validation, and the window sampler that feeds DMIL.

Batches are contiguous windows of trajectories (not shuffled states) so that the continuity loss
has real successor states to compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class MetaBatch:
    """Four batches per task: obs (T, 4, N, obs_dim), act (T, 4, N, action_dim).

    `next_same` (N-1,) is shared by all tasks: 1 where state i+1 follows state i in one window.
    """

    obs: Tensor
    act: Tensor
    next_same: Tensor

    def to(self, device: torch.device | str) -> MetaBatch:
        return MetaBatch(self.obs.to(device), self.act.to(device), self.next_same.to(device))


class DemoError(ValueError):
    """A demonstration cannot be used; the message says why."""


@dataclass(frozen=True)
class Demo:
    observations: np.ndarray  # (T, obs_dim) float32
    actions: np.ndarray  # (T, action_dim) float32
    task: str = ""


def validate_demos(demos: Sequence[Demo], obs_dim: int, action_dim: int) -> None:
    """Raise DemoError naming the first problem: no demos, empty, wrong shape or non-finite values."""
    if len(demos) == 0:
        raise DemoError("no demonstrations given")
    for i, d in enumerate(demos):
        obs, act = np.asarray(d.observations), np.asarray(d.actions)
        if obs.ndim != 2 or act.ndim != 2:
            raise DemoError(
                f"demo {i}: observations and actions must be 2-D (T, dim), got {obs.shape}, {act.shape}"
            )
        if obs.shape[0] == 0:
            raise DemoError(f"demo {i} is empty (0 steps)")
        if obs.shape[0] != act.shape[0]:
            raise DemoError(f"demo {i}: {obs.shape[0]} observations but {act.shape[0]} actions")
        if obs.shape[1] != obs_dim:
            raise DemoError(f"demo {i}: observation dim {obs.shape[1]}, the model expects {obs_dim}")
        if act.shape[1] != action_dim:
            raise DemoError(f"demo {i}: action dim {act.shape[1]}, the model expects {action_dim}")
        if not (np.isfinite(obs).all() and np.isfinite(act).all()):
            raise DemoError(f"demo {i} contains NaN or infinite values")


def concat_demos(demos: Sequence[Demo]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat (N, obs), (N, act) and the (N-1,) mask of consecutive pairs inside one demo."""
    obs = np.concatenate([np.asarray(d.observations, np.float32) for d in demos])
    act = np.concatenate([np.asarray(d.actions, np.float32) for d in demos])
    next_same = np.ones(max(len(obs) - 1, 0), np.float32)
    ends = np.cumsum([len(d.observations) for d in demos])[:-1]
    next_same[ends - 1] = 0.0
    return obs, act, next_same


def all_observations(demos_by_task: Mapping[str, Sequence[Demo]]) -> np.ndarray:
    """Every state of every demo of every task, stacked (N, obs_dim)."""
    obs, _, _ = concat_demos([d for demos in demos_by_task.values() for d in demos])
    return obs


def fit_normalizer(demos_by_task: Mapping[str, Sequence[Demo]], min_std: float = 1e-2) -> Normalizer:
    """The observation statistics of the training demos. `min_std` floors each feature's scale: a
    feature that never moves in training (the excluded kitchen object's joint) would otherwise blow up
    to ~100 standard deviations when it does move."""
    return Normalizer.fit(all_observations(demos_by_task), min_std)


@dataclass(frozen=True)
class Normalizer:
    """Fixed per-dimension observation statistics (computed once from training data, never learned)."""

    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def fit(observations: np.ndarray, min_std: float = 1e-2) -> Normalizer:
        return Normalizer(observations.mean(0).astype(np.float32), observations.std(0)).with_min_std(min_std)

    def with_min_std(self, min_std: float) -> Normalizer:
        """The same statistics with each std raised to at least `min_std` (a constant feature would
        otherwise blow up when it moves)."""
        return Normalizer(self.mean, np.maximum(self.std, min_std).astype(np.float32))

    @staticmethod
    def identity(dim: int) -> Normalizer:
        return Normalizer(np.zeros(dim, np.float32), np.ones(dim, np.float32))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return ((obs - self.mean) / self.std).astype(np.float32)


class WindowSampler:
    """Samples meta-batches of contiguous windows from per-task demonstrations."""

    def __init__(
        self,
        demos_by_task: Mapping[str, Sequence[Demo]],
        normalizer: Normalizer,
        window_length: int,
        windows_per_batch: int,
        seed: int = 0,
    ) -> None:
        if not demos_by_task:
            raise DemoError("no tasks given")
        self.tasks = sorted(demos_by_task)
        self.window_length = window_length
        self.windows_per_batch = windows_per_batch
        self.rng = np.random.default_rng(seed)
        self._obs: dict[str, np.ndarray] = {}
        self._act: dict[str, np.ndarray] = {}
        self._starts: dict[str, np.ndarray] = {}
        for task in self.tasks:
            demos = [d for d in demos_by_task[task] if len(d.observations) >= window_length]
            if not demos:
                raise DemoError(f"task {task!r}: no demonstration has >= {window_length} steps")
            obs, act, _ = concat_demos(demos)
            offsets = np.cumsum([0] + [len(d.observations) for d in demos])
            starts = np.concatenate(
                [np.arange(o, o + len(d.observations) - window_length + 1) for o, d in zip(offsets, demos)]
            )
            self._obs[task], self._act[task], self._starts[task] = normalizer(obs), act, starts
        n = window_length * windows_per_batch
        mask = np.ones(n - 1, np.float32)
        mask[window_length - 1 :: window_length] = 0.0
        self.next_same = torch.from_numpy(mask)

    def sample(self, num_tasks: int, tasks: Sequence[str] | None = None) -> MetaBatch:
        """`num_tasks` tasks (without replacement while possible), four window batches each."""
        pool = list(tasks) if tasks is not None else self.tasks
        replace = num_tasks > len(pool)
        chosen = self.rng.choice(len(pool), size=num_tasks, replace=replace)
        offs = np.arange(self.window_length)
        obs, act = [], []
        for ti in chosen:
            task = pool[ti]
            starts = self.rng.choice(self._starts[task], size=(4, self.windows_per_batch))
            idx = (starts[..., None] + offs).reshape(4, -1)
            obs.append(self._obs[task][idx])
            act.append(self._act[task][idx])
        return MetaBatch(torch.from_numpy(np.stack(obs)), torch.from_numpy(np.stack(act)), self.next_same)
