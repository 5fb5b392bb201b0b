"""Seeded evaluation episodes, in this process or spread over spawn-started worker processes.

An episode succeeds if `info['success']` is set at any step; it stops at the first success (later
steps cannot change the outcome) or at the horizon. Environments that score sub-tasks (the kitchen)
report them in `info['completed']`; the outcome keeps the list at the episode's end. The policy is a
Hierarchy (its greedy action) or None for the environment's scripted expert.
"""

from __future__ import annotations

import multiprocessing
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.envs.base import ManipulationEnv
from dmil_ros.envs.registry import make_env


@dataclass(frozen=True)
class EpisodeOutcome:
    seed: int
    success: bool
    steps: int  # steps run: up to the first success, else the horizon
    completed: tuple[str, ...] = ()  # sub-tasks completed (kitchen); empty for single-task envs


@dataclass(frozen=True)
class RolloutJob:
    env: str
    task: str
    horizon: int
    policy: Hierarchy | None  # None: the scripted expert
    seeds: tuple[int, ...]
    key: tuple = ()  # caller's label, returned with the outcomes


def run_episode(env: ManipulationEnv, policy: Hierarchy | None, seed: int) -> EpisodeOutcome:
    obs = env.reset(seed)
    completed: tuple[str, ...] = ()
    for t in range(env.max_episode_steps):
        if policy is None:
            action = env.expert_action(obs)
        else:
            action = np.clip(policy.act(obs)[0], -1.0, 1.0)
        result = env.step(action)
        completed = tuple(result.info.get("completed", ()))
        if result.success:
            return EpisodeOutcome(seed, True, t + 1, completed)
        obs = result.observation
    return EpisodeOutcome(seed, False, env.max_episode_steps, completed)


_ENVS: OrderedDict[tuple[str, str, int], ManipulationEnv] = OrderedDict()
_MAX_ENVS = 4


def _env(name: str, task: str, horizon: int) -> ManipulationEnv:
    key = (name, task, horizon)
    if key not in _ENVS:
        _ENVS[key] = make_env(name, task, max_episode_steps=horizon)
        while len(_ENVS) > _MAX_ENVS:
            _ENVS.popitem(last=False)[1].close()
    _ENVS.move_to_end(key)
    return _ENVS[key]


def run_job(job: RolloutJob) -> tuple[tuple, list[EpisodeOutcome]]:
    env = _env(job.env, job.task, job.horizon)
    return job.key, [run_episode(env, job.policy, s) for s in job.seeds]


def _worker_init() -> None:
    torch.set_num_threads(1)  # workers share the machine's cores; one thread each


class RolloutRunner:
    """Runs rollout jobs serially (workers <= 1) or on a process pool kept for the runner's lifetime."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 1:
            ctx = multiprocessing.get_context("spawn")  # fork + MuJoCo/torch threads is not safe
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init)

    def run(
        self, jobs: Sequence[RolloutJob], on_done: Callable[[int], None] | None = None
    ) -> dict[tuple, list[EpisodeOutcome]]:
        """Outcomes per job key; `on_done(n_episodes)` after each finished job (progress bars)."""
        out: dict[tuple, list[EpisodeOutcome]] = {}
        if self._pool is None:
            results = map(run_job, jobs)
        else:
            results = self._pool.map(run_job, jobs)
        for key, outcomes in results:
            out[key] = outcomes
            if on_done is not None:
                on_done(len(outcomes))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> RolloutRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
