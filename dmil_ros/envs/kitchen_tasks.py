"""Franka Kitchen task vocabulary and the paper's unseen-object protocol (Tables 2 and 5).

A kitchen *task* is an ordered list of sub-tasks, written as slugs joined by '+', e.g.
'microwave+kettle+top_burner+light_switch'. An episode scores the number of the task's sub-tasks
completed (any order, each counted once).

Protocol: each unseen combination comes with one *excluded* object. Meta-training uses only tasks
that never touch it (suite 'kitchen-no-<object>', split 'train'); at test time the few-shot
demonstrations show the whole unseen combination, excluded object included (split 'test').

The paper's Table 2 lost its boldface (the excluded objects) in the text we have, and lists the
third combination twice. We read it like the FIST paper's kitchen table it compares against: the
same sequences with Top Burner, Microwave, Kettle and Hinge Cabinet excluded respectively, which
also explains the repeated row (same sequence, different excluded object). Edit `UNSEEN` to change it.

Training tasks are a fixed, seeded sample of ordered 4-sub-task combinations of the remaining six
objects, so every run (and every machine) trains on the same list without storing it.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass

import numpy as np

# Gymnasium-robotics names these with spaces ('top burner'); slugs keep task names shell- and file-safe.
SUBTASKS: tuple[str, ...] = (
    "microwave",
    "kettle",
    "bottom_burner",
    "top_burner",
    "light_switch",
    "slide_cabinet",
    "hinge_cabinet",
)
SUITE_PREFIX = "kitchen-no-"
TRAIN_TASKS_PER_SUITE = 20


def gym_name(slug: str) -> str:
    """'top_burner' -> 'top burner' (gymnasium-robotics' sub-task key)."""
    return slug.replace("_", " ")


def parse_task(task: str) -> tuple[str, ...]:
    """'microwave+kettle' -> ('microwave', 'kettle'); unknown or repeated sub-tasks are refused."""
    parts = tuple(p.strip() for p in str(task).split("+"))
    unknown = [p for p in parts if p not in SUBTASKS]
    if not parts or unknown:
        raise ValueError(
            f"kitchen task {task!r}: unknown sub-task(s) {unknown or ['(empty)']}; "
            f"use slugs from {', '.join(SUBTASKS)} joined by '+'"
        )
    if len(set(parts)) != len(parts):
        raise ValueError(f"kitchen task {task!r} repeats a sub-task")
    return parts


def task_name(subtasks: tuple[str, ...] | list[str]) -> str:
    return "+".join(parse_task("+".join(subtasks)))


@dataclass(frozen=True)
class UnseenCombo:
    subtasks: tuple[str, ...]
    excluded: str  # the object never seen during meta-training

    @property
    def task(self) -> str:
        return task_name(self.subtasks)

    @property
    def suite(self) -> str:
        return SUITE_PREFIX + self.excluded

    @property
    def label(self) -> str:
        """Unique per row (rows 3 and 4 share a sequence and differ in the excluded object)."""
        return f"{self.task} (excluded {self.excluded})"


UNSEEN: tuple[UnseenCombo, ...] = (
    UnseenCombo(("microwave", "kettle", "top_burner", "light_switch"), "top_burner"),
    UnseenCombo(("microwave", "bottom_burner", "light_switch", "slide_cabinet"), "microwave"),
    UnseenCombo(("microwave", "kettle", "hinge_cabinet", "slide_cabinet"), "kettle"),
    UnseenCombo(("microwave", "kettle", "hinge_cabinet", "slide_cabinet"), "hinge_cabinet"),
)


VALIDATION_PER_OBJECT = 3


def validation_combos(n: int = VALIDATION_PER_OBJECT) -> tuple[UnseenCombo, ...]:
    """For every excluded object of UNSEEN, `n` other ordered combinations that contain it.

    They let test-time settings (the adaptation budget) be chosen on tasks with the unseen object
    without looking at the four reported ones: never a test sequence, never a training task (training
    tasks lack the object), the same on every machine."""
    test = {c.task for c in UNSEEN}
    out: list[UnseenCombo] = []
    for excluded in dict.fromkeys(c.excluded for c in UNSEEN):
        combos = [c for c in itertools.permutations(SUBTASKS, 4) if excluded in c]
        combos = [c for c in combos if task_name(c) not in test]
        rng = np.random.default_rng(zlib.crc32(f"validation:{excluded}".encode()))
        out += [UnseenCombo(combos[i], excluded) for i in sorted(rng.choice(len(combos), n, replace=False))]
    return tuple(out)


def kitchen_suites() -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.suite for c in UNSEEN))


def excluded_object(suite: str) -> str:
    if not suite.startswith(SUITE_PREFIX) or suite[len(SUITE_PREFIX) :] not in SUBTASKS:
        raise ValueError(f"not a kitchen suite: {suite!r} (expected {SUITE_PREFIX}<sub-task>)")
    return suite[len(SUITE_PREFIX) :]


def train_tasks(excluded: str, n: int = TRAIN_TASKS_PER_SUITE) -> list[str]:
    """`n` ordered 4-sub-task combinations without `excluded`, the same on every machine."""
    if excluded not in SUBTASKS:
        raise ValueError(f"unknown sub-task {excluded!r}; known: {', '.join(SUBTASKS)}")
    allowed = [s for s in SUBTASKS if s != excluded]
    combos = list(itertools.permutations(allowed, 4))  # 360 for six objects
    rng = np.random.default_rng(zlib.crc32(excluded.encode()))
    picked = rng.choice(len(combos), size=min(n, len(combos)), replace=False)
    return [task_name(combos[i]) for i in sorted(picked)]


def suite_tasks(suite: str, split: str) -> list[str]:
    """'kitchen-no-kettle' x 'train' -> its training tasks; 'test' -> its unseen combinations."""
    excluded = excluded_object(suite)
    test = list(dict.fromkeys(c.task for c in UNSEEN if c.excluded == excluded))
    if split == "train":
        return train_tasks(excluded)
    if split == "test":
        if not test:
            raise ValueError(f"{suite}: no unseen combination excludes {excluded!r}")
        return test
    if split == "all":
        return train_tasks(excluded) + test
    raise ValueError(f"unknown split {split!r}; known: train, test, all")
