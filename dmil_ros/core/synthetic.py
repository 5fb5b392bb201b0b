"""A synthetic multi-task benchmark with known sub-skills and segmentation.

A point moves right across the plane through three bands of x. In each band one of three shared
linear controllers (the true sub-skills) acts; a *task* is the choice of controller per band plus
the band boundaries. Meta-training tasks and held-out tasks recombine the same controllers in
different orders, so a good hierarchy keeps the sub-skills and only has to re-learn which one to
call where: exactly what DMIL's adaptation should recover from one demonstration.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dmil_ros.core.data import Demo

DT = 0.1
X_END = 3.0
MAX_STEPS = 120
# Controller k: a = (speed_k, gain_k * (target_k - y)): distinct speeds and y-targets.
SPEEDS = np.array([0.6, 1.0, 1.4], np.float32)
TARGETS = np.array([1.0, -1.0, 0.0], np.float32)
GAINS = np.array([1.0, 1.0, 2.0], np.float32)
OBS_DIM = 2
ACTION_DIM = 2
NUM_TRUE_SKILLS = 3


@dataclass(frozen=True)
class SyntheticTask:
    sequence: tuple[int, int, int]  # controller used in band 0, 1, 2
    boundaries: tuple[float, float]  # x where band 1 and band 2 start

    @property
    def name(self) -> str:
        b = self.boundaries
        return f"seq{''.join(map(str, self.sequence))}_b{b[0]:.2f}_{b[1]:.2f}"

    def skill_at(self, x: np.ndarray) -> np.ndarray:
        band = (x >= self.boundaries[0]).astype(int) + (x >= self.boundaries[1]).astype(int)
        return np.asarray(self.sequence)[band]


def true_action(state: np.ndarray, skill: np.ndarray) -> np.ndarray:
    y = state[..., 1]
    return np.stack([SPEEDS[skill], GAINS[skill] * (TARGETS[skill] - y)], -1).astype(np.float32)


def rollout(task: SyntheticTask, rng: np.random.Generator) -> tuple[Demo, np.ndarray]:
    """One expert trajectory and its true sub-skill labels."""
    s = np.array([rng.uniform(0.0, 0.1), rng.uniform(-1.5, 1.5)], np.float32)
    states, actions, skills = [], [], []
    for _ in range(MAX_STEPS):
        k = task.skill_at(s[:1])[0]
        a = true_action(s, np.array(k))
        states.append(s.copy())
        actions.append(a)
        skills.append(k)
        s = s + DT * a
        if s[0] >= X_END:
            break
    return Demo(np.stack(states), np.stack(actions), task.name), np.asarray(skills)


def all_sequences() -> list[tuple[int, int, int]]:
    """Orders of the three controllers with no controller repeated in adjacent bands (12 of them)."""
    return [s for s in itertools.product(range(3), repeat=3) if s[0] != s[1] and s[1] != s[2]]


def make_tasks(seed: int) -> tuple[list[SyntheticTask], list[SyntheticTask]]:
    """(meta-train tasks, held-out tasks): held-out tasks use controller orders never seen in training."""
    rng = np.random.default_rng(seed)
    seqs = all_sequences()
    order = rng.permutation(len(seqs))
    held_out_seqs = [seqs[i] for i in order[:3]]
    train_seqs = [seqs[i] for i in order[3:]]

    def task(seq: tuple[int, int, int]) -> SyntheticTask:
        b0 = float(rng.uniform(0.8, 1.2))
        b1 = float(rng.uniform(1.8, 2.2))
        return SyntheticTask(seq, (b0, b1))

    train = [task(s) for s in train_seqs for _ in range(2)]
    return train, [task(s) for s in held_out_seqs]


def segmentation_accuracy(predicted: np.ndarray, truth: np.ndarray, num_skills: int) -> float:
    """Agreement of predicted and true labels under the best mapping of learned to true skills.

    With K == true count this is the best permutation; with K > true count several learned skills
    may map to one true skill (a many-to-one mapping is the fair reading of "up to permutation").
    """
    if num_skills <= NUM_TRUE_SKILLS:
        best = 0.0
        for perm in itertools.permutations(range(NUM_TRUE_SKILLS), num_skills):
            best = max(best, float(np.mean(np.asarray(perm)[predicted] == truth)))
        return best
    mapping = np.array(
        [
            np.bincount(truth[predicted == k], minlength=NUM_TRUE_SKILLS).argmax()
            if np.any(predicted == k)
            else 0
            for k in range(num_skills)
        ]
    )
    return float(np.mean(mapping[predicted] == truth))
