"""Kitchen task vocabulary, the unseen-object protocol and the Table-2 evaluation (real physics)."""

from __future__ import annotations

import json

import pytest

from dmil_ros.envs import kitchen_tasks as kt
from dmil_ros.envs.registry import SUITES, suite_tasks
from dmil_ros.evaluation.kitchen import KitchenSettings, evaluate_kitchen, resolve_kitchen_policies
from dmil_ros.evaluation.policies import MissingCheckpoint


def test_parse_task_refuses_unknown_and_repeated_subtasks() -> None:
    assert kt.parse_task("microwave+top_burner") == ("microwave", "top_burner")
    with pytest.raises(ValueError, match="unknown sub-task"):
        kt.parse_task("microwave+toaster")
    with pytest.raises(ValueError, match="repeats"):
        kt.parse_task("kettle+kettle")


def test_training_tasks_never_touch_the_excluded_object() -> None:
    for combo in kt.UNSEEN:
        assert combo.suite in SUITES
        train = suite_tasks(combo.suite, "train")
        assert len(train) == kt.TRAIN_TASKS_PER_SUITE == len(set(train))
        assert all(combo.excluded not in kt.parse_task(t) for t in train)
        assert all(len(kt.parse_task(t)) == 4 for t in train)
        assert combo.task in suite_tasks(combo.suite, "test")
        assert combo.task not in train
        assert train == kt.train_tasks(combo.excluded)  # fixed list: same on every call and machine
    # Rows 3 and 4 share a sequence but not the excluded object, so their labels differ.
    assert len({c.label for c in kt.UNSEEN}) == len(kt.UNSEEN)


def test_missing_kitchen_checkpoint_names_the_object(tmp_path) -> None:
    with pytest.raises(MissingCheckpoint, match="top_burner"):
        resolve_kitchen_policies("dmil", str(tmp_path))


def test_scripted_expert_scores_through_the_kitchen_harness(tmp_path, capsys) -> None:
    """The adaptation-free path (the scripted expert) must score near its known quality."""
    combo = kt.UNSEEN[0]
    settings = KitchenSettings(
        shots=1, trials=2, seeds=(0,), pool=str(tmp_path / "pool.hdf5"), pool_size=1,
        progress=False, combos=(combo,),
    )  # fmt: skip
    result = evaluate_kitchen(resolve_kitchen_policies("expert", None, (combo,)), settings)
    assert set(result["per_combo"]) == {combo.label}
    assert result["min_completed"] >= 3.0, result
    row = result["combos"][0]
    assert row["episodes"] == 2 and set(row["subtask_completion"]) == set(combo.subtasks)

    from dmil_ros.evaluation.cli import main

    assert main(["--env", "kitchen", "--method", "expert", "--trials", "1", "--seeds", "1", "--shots", "1",
                 "--pool", str(tmp_path / "pool.hdf5"), "--pool-size", "1", "--no-progress", "--json",
                 "--table", str(tmp_path / "t.md")]) == 0  # fmt: skip
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(last["per_combo"]) == {c.label for c in kt.UNSEEN}
    assert last["min_completed"] == min(last["per_combo"].values())
