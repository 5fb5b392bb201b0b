"""How an episode scores and how a cell's episodes are summarised.

Meta-World (paper Table 1): success (info['success'] at any step) counts 1; a cell's number is the
mean success rate with its standard error over evaluation seeds (each seed draws its own demos).
Kitchen (Tables 2 and 5): the number of the combination's sub-tasks completed (any order); mean and
standard error over all episodes (trials x seeds), as the paper reports them, plus how often each
sub-task was completed, so one sees whether the unseen object's sub-task is the one that fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from dmil_ros.envs.kitchen_tasks import parse_task
from dmil_ros.evaluation.rollout import EpisodeOutcome


class Scorer:
    name: ClassVar[str]  # what the cell's `mean` is
    stderr_over: ClassVar[Literal["seeds", "episodes"]]
    digits: ClassVar[int]  # decimals in tables

    def score(self, task: str, episode: EpisodeOutcome) -> float:
        raise NotImplementedError

    def details(self, episodes: Mapping[str, Sequence[EpisodeOutcome]]) -> dict[str, Any]:
        """Extra numbers of a cell from its episodes per task (JSON-ready)."""
        return {}


class SuccessRate(Scorer):
    name = "success_rate"
    stderr_over = "seeds"
    digits = 3

    def score(self, task: str, episode: EpisodeOutcome) -> float:
        return float(episode.success)


class CompletedSubtasks(Scorer):
    name = "completed_subtasks"
    stderr_over = "episodes"
    digits = 2

    def score(self, task: str, episode: EpisodeOutcome) -> float:
        subtasks = parse_task(task)
        return float(sum(t in subtasks for t in episode.completed))

    def details(self, episodes: Mapping[str, Sequence[EpisodeOutcome]]) -> dict[str, Any]:
        """How often each sub-task was completed, and how often all of a task's sub-tasks were."""
        done: dict[str, list[bool]] = {}
        full: list[bool] = []
        for task, eps in episodes.items():
            subtasks = parse_task(task)
            for t in subtasks:
                done.setdefault(t, []).extend(t in e.completed for e in eps)
            full += [sum(t in subtasks for t in e.completed) == len(subtasks) for e in eps]
        return {
            "subtask_completion": {t: float(np.mean(v)) for t, v in done.items()},
            "full_success": float(np.mean(full)),
        }


SCORERS: dict[str, Scorer] = {"metaworld": SuccessRate(), "kitchen": CompletedSubtasks()}
BY_NAME: dict[str, Scorer] = {s.name: s for s in SCORERS.values()}


def scorer_for(env: str) -> Scorer:
    if env not in SCORERS:
        raise ValueError(f"unknown env family {env!r}; known: {', '.join(SCORERS)}")
    return SCORERS[env]
