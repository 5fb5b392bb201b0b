"""Seeded evaluation episodes, and the adaptations they roll out, in this process or spread over
spawn-started worker processes.

With workers, the adaptations run in the workers too (`RolloutRunner.adapt_and_run`): on the kitchen
they are about half of an evaluation's CPU time, and each one's episodes start as soon as it is done.
Each adaptation is seeded and every worker runs torch on one thread, so where it runs does not change
its result (the parent also defaults to one).

An episode succeeds if `info['success']` is set at any step; it stops at the first success (later
steps cannot change the outcome) or at the horizon. Environments that score sub-tasks (the kitchen)
report them in `info['completed']`; the outcome keeps the list at the episode's end. The policy is a
Hierarchy (its greedy action) or None for the environment's scripted expert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.data.workers import Job, WorkerPool
from dmil_ros.envs.base import ManipulationEnv
from dmil_ros.envs.registry import cached_env

if TYPE_CHECKING:
    from dmil_ros.core.data import Demo
    from dmil_ros.methods.base import Adaptation, Method


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


@dataclass(frozen=True)
class AdaptJob:
    """`method.adapt(policy, demos, seed)`, labelled with the caller's `key`."""

    method: Method
    policy: Hierarchy | None
    demos: tuple[Demo, ...]
    seed: int
    key: tuple = ()


EPISODES_PER_JOB = 5  # small enough to balance workers, large enough to amortise pickling the policy


def rollout_jobs(
    env: str, task: str, horizon: int, policy: Hierarchy | None, seeds: Sequence[int], key: tuple
) -> list[RolloutJob]:
    """`seeds`' episodes in jobs of `EPISODES_PER_JOB`, keyed `(*key, first index)`."""
    n = EPISODES_PER_JOB
    chunks = range(0, len(seeds), n)
    return [RolloutJob(env, task, horizon, policy, tuple(seeds[i : i + n]), key=(*key, i)) for i in chunks]


def run_adapt_job(job: AdaptJob) -> tuple[str, tuple, Adaptation]:
    return "adapt", job.key, job.method.adapt(job.policy, list(job.demos), seed=job.seed)


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


def run_job(job: RolloutJob) -> tuple[str, tuple, list[EpisodeOutcome]]:
    env = cached_env(job.env, job.task, job.horizon)
    return "rollout", job.key, [run_episode(env, job.policy, s) for s in job.seeds]


def _worker_init() -> None:
    torch.set_num_threads(1)  # workers share the machine's cores; one thread each


class RolloutRunner:
    """Runs adaptation and rollout jobs in this process (workers <= 1) or on worker processes kept
    for the runner's lifetime."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = WorkerPool(workers, initializer=_worker_init)

    @property
    def workers(self) -> int:
        return self._pool.workers

    def adapt_and_run(
        self,
        adapt_jobs: Sequence[AdaptJob],
        rollouts_for: Callable[[tuple, Adaptation], Sequence[RolloutJob]],
        on_done: Callable[[int], None] | None = None,
    ) -> tuple[dict[tuple, Adaptation], dict[tuple, list[EpisodeOutcome]]]:
        """Run every adaptation, then the rollout jobs `rollouts_for(key, adaptation)` makes of it:
        (adaptations per adapt key, outcomes per rollout key), both in the order of `adapt_jobs`. On
        workers, both kinds of job share them, and an adaptation's rollouts start as soon as it is done."""
        adaptations: dict[tuple, Adaptation] = {}
        out: dict[tuple, list[EpisodeOutcome]] = {}
        order: dict[tuple, list[tuple]] = {}  # adapt key -> its rollout keys

        def handle(result: tuple[str, tuple, Any]) -> list[Job]:
            kind, key, value = result
            if kind == "rollout":
                out[key] = value
                if on_done is not None:
                    on_done(len(value))
                return []
            adaptations[key] = value
            rollouts = rollouts_for(key, value)
            order[key] = [r.key for r in rollouts]
            return [(run_job, r) for r in rollouts]

        self._pool.run([(run_adapt_job, j) for j in adapt_jobs], handle)
        keys = [k for job in adapt_jobs for k in order[job.key]]
        return {j.key: adaptations[j.key] for j in adapt_jobs}, {k: out[k] for k in keys}

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> RolloutRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
