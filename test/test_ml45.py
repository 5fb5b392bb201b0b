"""ML45: the task lists and splits, the meta-validation tasks, and the recipe's training path."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("metaworld")
pytestmark = pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high")

from dmil_ros.core.checkpoint import load_checkpoint  # noqa: E402
from dmil_ros.envs.registry import VALIDATION_TASKS, available_tasks, suite_tasks  # noqa: E402
from dmil_ros.training.config import load_config  # noqa: E402
from dmil_ros.training.runner import train  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "config" / "train_ml45.yaml"
ML45_TEST = ["bin-picking-v3", "box-close-v3", "hand-insert-v3", "door-lock-v3", "door-unlock-v3"]


def test_ml45_splits_are_45_plus_the_five_test_tasks_disjoint_and_real() -> None:
    train_tasks, test_tasks = suite_tasks("ml45", "train"), suite_tasks("ml45", "test")
    assert len(train_tasks) == len(set(train_tasks)) == 45
    assert sorted(test_tasks) == sorted(ML45_TEST)
    assert not set(train_tasks) & set(test_tasks)
    assert set(train_tasks) | set(test_tasks) == set(available_tasks())  # ML45 covers all 50 tasks


def test_meta_validation_tasks() -> None:
    ml45 = VALIDATION_TASKS["ml45"]
    assert len(set(ml45)) == 5 and set(ml45) <= set(suite_tasks("ml45", "train"))
    ml10 = VALIDATION_TASKS["ml10"]  # outside both ML10 splits
    assert len(set(ml10)) == 5 and not set(ml10) & set(suite_tasks("ml10", "all"))


def test_recipe_trains_a_loadable_checkpoint_on_a_few_ml45_tasks(tmp_path: Path) -> None:
    tasks = ["coffee-button-v3", "plate-slide-side-v3"]  # ML45 training tasks outside ML10
    cfg = load_config(RECIPE, [
        f"tasks={tasks}", f"data.path={tmp_path / 'demos.hdf5'}", "data.demos_per_task=4",
        "data.validation_demos=2", "data.horizon=150", "data.collect_workers=1",
        "model.hidden_sizes=[32,32]", "dmil.tasks_per_batch=2", "dmil.windows_per_batch=2",
        "dmil.adapt.steps=2", "train.iterations=2", "train.eval_interval=2", "train.snapshot_interval=1",
    ])  # fmt: skip
    assert cfg.suite == "ml45" and cfg.model.num_skills == 3  # the recipe's own values stay
    run = train(cfg, tmp_path / "run", progress=False).run_dir
    policy, dmil_cfg, meta = load_checkpoint(run / "last")
    assert meta["tasks"] == tasks and meta["iteration"] == 2 and policy.config.obs_dim == 39
    assert dmil_cfg.tasks_per_batch == 2 and (run / "snapshots" / "it1").is_dir()
