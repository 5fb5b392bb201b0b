"""What one table cell measures: a policy adapted on `shots` demos of each of its tasks, then rolled
out. Meta-World: a suite split at k shots (paper Table 1); kitchen: one unseen combination, with the
policy meta-trained without its excluded object (Table 2)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dmil_ros.envs.kitchen_tasks import UnseenCombo
from dmil_ros.envs.registry import suite_tasks
from dmil_ros.evaluation.policies import ResolvedPolicy

CUSTOM_SUITE = "custom"  # an explicit task list


@dataclass(frozen=True)
class Cell:
    suite: str  # suite name, or "custom" for an explicit task list
    split: str  # "train" (meta-training tasks), "test" (meta-testing tasks), or a label ("val")
    tasks: tuple[str, ...]
    shots: int
    policy: ResolvedPolicy
    label: str = ""  # names the cell in a table when the suite/split/shots do not (a kitchen row)


def metaworld_cells(
    suites: Sequence[str],
    splits: Sequence[str],
    shots: Sequence[int],
    policy_for: Callable[[str], ResolvedPolicy],
    tasks: Sequence[str] = (),
) -> list[Cell]:
    """Cells in Table-1 order, each with `policy_for(suite)`; an explicit task list is one 'custom'
    suite evaluated per split label."""
    cells = []
    for suite in [CUSTOM_SUITE] if tasks else suites:
        policy = policy_for(suite)
        for split in splits:
            names = tuple(tasks) if tasks else tuple(suite_tasks(suite, split))
            cells.extend(Cell(suite, split, names, k, policy) for k in shots)
    return cells


def kitchen_cells(
    combos: Sequence[UnseenCombo], split: str, shots: int, policy_for: Callable[[str], ResolvedPolicy]
) -> list[Cell]:
    """One cell per combination, with `policy_for(its suite)`: the policy trained without its
    excluded object."""
    return [Cell(c.suite, split, (c.task,), shots, policy_for(c.suite), c.label) for c in combos]
