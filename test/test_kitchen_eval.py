"""Kitchen task vocabulary, the unseen-object protocol and the Table-2 evaluation (real physics)."""

from __future__ import annotations

import json

import pytest

from dmil_ros.envs import kitchen_tasks as kt
from dmil_ros.envs.registry import SUITES, suite_tasks
from dmil_ros.evaluation.cells import kitchen_cells
from dmil_ros.evaluation.pipeline import CellResult, EvalSettings, evaluate
from dmil_ros.evaluation.policies import MissingCheckpoint, kitchen_policies
from dmil_ros.evaluation.results import run_json
from dmil_ros.evaluation.rollout import EpisodeOutcome
from dmil_ros.evaluation.scoring import scorer_for


def fake_results(cells, scorer, settings):
    """What `evaluate` returns, without running anything: one failed episode per seed and task."""
    def failed(cell):
        return {(s, t): [EpisodeOutcome(0, False, 1)] for s in settings.seeds for t in cell.tasks}

    return [CellResult(c, scorer, settings, failed(c)) for c in cells]


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


def test_validation_combinations_hold_the_excluded_object_and_no_test_sequence() -> None:
    val = kt.validation_combos()
    objects = list(dict.fromkeys(c.excluded for c in kt.UNSEEN))
    assert [c.excluded for c in val] == [o for o in objects for _ in range(kt.VALIDATION_PER_OBJECT)]
    assert len({c.label for c in val}) == len(val)
    tests = {c.task for c in kt.UNSEEN}
    for combo in val:
        assert combo.excluded in combo.subtasks and len(combo.subtasks) == 4
        assert combo.task not in tests
        assert combo.task not in suite_tasks(combo.suite, "train")
    assert val == kt.validation_combos()  # fixed list: same on every call and machine


def test_missing_kitchen_checkpoint_names_the_object(tmp_path) -> None:
    with pytest.raises(MissingCheckpoint, match="top_burner"):
        kitchen_policies("dmil", str(tmp_path), kt.UNSEEN)


def test_scripted_expert_scores_through_the_kitchen_harness(tmp_path, capsys) -> None:
    """The adaptation-free path (the scripted expert) must score near its known quality."""
    combo = kt.UNSEEN[0]
    settings = EvalSettings(
        env="kitchen", protocol="kitchen", trials=2, seeds=(0,), pool=str(tmp_path / "pool.hdf5"),
        pool_size=1, progress=False,
    )  # fmt: skip
    policies = kitchen_policies("expert", None, (combo,))
    cells = kitchen_cells((combo,), "test", 1, lambda suite: policies[combo.excluded])
    result = run_json(evaluate(cells, scorer_for("kitchen"), settings), settings, 0.0)
    assert set(result["per_combo"]) == {combo.label}
    assert result["min_completed"] >= 3.0, result
    row = result["cells"][0]
    assert row["episodes"] == 2 and set(row["subtask_completion"]) == set(combo.subtasks)

    from dmil_ros.evaluation.cli import main

    assert main(["--env", "kitchen", "--method", "expert", "--trials", "1", "--seeds", "1", "--shots", "1",
                 "--pool", str(tmp_path / "pool.hdf5"), "--pool-size", "1", "--no-progress", "--json",
                 "--table", str(tmp_path / "t.md")]) == 0  # fmt: skip
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(last["per_combo"]) == {c.label for c in kt.UNSEEN}
    assert last["min_completed"] == min(last["per_combo"].values())


def test_tiny_kitchen_training_run_gives_a_hierarchy_that_acts(tmp_path) -> None:
    """Real scripted demos of two single-sub-task kitchen tasks -> a few DMIL iterations -> it acts."""
    import numpy as np

    from dmil_ros.core.checkpoint import load_checkpoint
    from dmil_ros.envs.registry import make_env
    from dmil_ros.training.config import config_from_dict
    from dmil_ros.training.runner import train

    tasks = ["microwave", "slide_cabinet"]
    cfg = config_from_dict({
        "method": "dmil", "device": "cpu", "torch_threads": 1, "env": "kitchen", "tasks": tasks,
        "data": {"path": str(tmp_path / "k.hdf5"), "demos_per_task": 3, "validation_demos": 2,
                 "horizon": 120, "noise_std": 0.05, "collect_workers": 1, "normalizer_min_std": 0.1,
                 "constant_input_std": 1e-3},
        "model": {"num_skills": 2, "hidden_sizes": [32, 32]},
        "dmil": {"tasks_per_batch": 2, "windows_per_batch": 2, "window_length": 8},
        "train": {"iterations": 4, "eval_interval": 2, "log_interval": 2},
    })  # fmt: skip
    run = train(cfg, tmp_path / "run", progress=False).run_dir
    policy, _, meta = load_checkpoint(run / "best")
    assert meta["env"] == "kitchen" and float(policy.normalizer.std.min()) >= 0.1 - 1e-6
    # the kettle never moves in these tasks: its first-layer weights started at 0 and stayed there
    from dmil_ros.data.hdf5_dataset import load_demos

    obs = np.concatenate([d.observations for ds in load_demos(tmp_path / "k.hdf5").values() for d in ds])
    constant = obs.std(0) <= 1e-3
    assert constant[23:].all() and not constant[:7].any()
    for name in ("high.0.weight", "low.0.weight"):
        w = policy.params[name].abs()
        assert float(w[..., constant].max()) == 0.0 < float(w[..., ~constant].max())
    # a run continued from it keeps them there
    import dataclasses

    more = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=str(run / "best")))
    continued, _, _ = load_checkpoint(train(more, tmp_path / "more", progress=False).run_dir / "best")
    assert float(continued.params["low.0.weight"][..., constant].abs().max()) == 0.0
    env = make_env("kitchen", "microwave", max_episode_steps=5)
    action, skill, probs = policy.act(env.reset(0))
    assert action.shape == (9,) and np.isfinite(action).all() and 0 <= skill < 2
    assert np.isclose(float(np.sum(probs)), 1.0, atol=1e-5)
    assert env.step(np.clip(action, -1, 1)).observation.shape == (30,)


def test_adaptation_overrides_reach_the_kitchen_policies(monkeypatch, tmp_path) -> None:
    """--adapt-steps/--adapt-lr apply to every kitchen policy (they were once silently ignored)."""
    from dmil_ros.evaluation import cli, pipeline

    seen = {}

    def capture(cells, scorer, settings):
        seen.update({c.suite: c.policy for c in cells})
        raise RuntimeError("captured")

    monkeypatch.setattr(pipeline, "evaluate", capture)
    with pytest.raises(RuntimeError, match="captured"):
        cli.main(["--env", "kitchen", "--adapt-steps", "7", "--adapt-lr", "0.003", "--adapt-optimizer",
                  "adam", "--no-progress", "--table", str(tmp_path / "t.md")])  # fmt: skip
    assert set(seen) == {c.suite for c in kt.UNSEEN}  # one policy per excluded object
    for resolved in seen.values():
        adapt = resolved.method.dmil.adapt
        assert adapt.steps == 7 and adapt.lr == 0.003 and adapt.optimizer == "adam"


def test_kitchen_split_selects_the_combinations(monkeypatch, tmp_path, capsys) -> None:
    from dmil_ros.evaluation import cli, pipeline

    seen = []
    def record(cells, scorer, s):
        seen.append(tuple(c.label for c in cells))
        return fake_results(cells, scorer, s)

    monkeypatch.setattr(pipeline, "evaluate", record)
    for split in ("val", "test"):
        assert cli.main(["--env", "kitchen", "--split", split, "--no-progress",
                         "--table", str(tmp_path / "t.md")]) == 0  # fmt: skip
    assert seen == [tuple(c.label for c in kt.validation_combos()), tuple(c.label for c in kt.UNSEEN)]
    assert cli.main(["--env", "kitchen", "--split", "train", "--no-progress"]) == 2
    assert "--split test or --split val" in capsys.readouterr().err


def test_kitchen_suite_selects_the_excluded_objects(monkeypatch, tmp_path, capsys) -> None:
    """--suite kitchen-no-<object> evaluates (and needs checkpoints for) those objects only; it and
    --tasks were once silently ignored with --env kitchen."""
    from dmil_ros.evaluation import cli, pipeline

    seen = []

    def record(cells, scorer, s):
        seen.append(({kt.excluded_object(c.suite) for c in cells}, tuple(c.label for c in cells)))
        return fake_results(cells, scorer, s)

    monkeypatch.setattr(pipeline, "evaluate", record)
    table = ["--no-progress", "--table", str(tmp_path / "t.md")]
    assert cli.main(["--env", "kitchen", "--split", "val", "--suite", "kitchen-no-kettle", *table]) == 0
    kettle = tuple(c for c in kt.validation_combos() if c.excluded == "kettle")
    assert len(kettle) == kt.VALIDATION_PER_OBJECT
    assert seen == [({"kettle"}, tuple(c.label for c in kettle))]
    assert cli.main(["--env", "kitchen", "--suite", "kitchen-no-light_switch", *table]) == 2
    err = capsys.readouterr().err
    assert "unknown --suite kitchen-no-light_switch; choose from kitchen-no-top_burner" in err
    assert cli.main(["--env", "kitchen", "--tasks", "microwave+kettle", *table]) == 2
    assert "not --tasks" in capsys.readouterr().err
    assert len(seen) == 1


def test_table_from_renders_kitchen_results_and_refuses_unusable_files(tmp_path, capsys) -> None:
    from dmil_ros.evaluation import cli

    def result(mean: float, seeds: int) -> dict:
        row = {"label": kt.UNSEEN[0].label, "mean_completed": mean, "stderr": 0.1}
        return {"env": "kitchen", "combos": [row], "trials": 10, "seeds": list(range(seeds)), "shots": 3,
                "horizon": 500}  # fmt: skip

    (tmp_path / "v4.json").write_text(json.dumps(result(1.25, 2)))
    (tmp_path / "v5.json").write_text(json.dumps(result(0.5, 5)))
    assert cli.main(["--table-from", str(tmp_path / "v4.json"), str(tmp_path / "v5.json"),
                     "--table", str(tmp_path / "t.md")]) == 0  # fmt: skip
    table = (tmp_path / "t.md").read_text()
    assert "| v4 | v5 |" in table and "1.25 ± 0.10 | 0.50 ± 0.10" in table
    assert "- v5: 10 trials x 5 evaluation seed(s)" in table  # columns of different runs say so

    (tmp_path / "broken.json").write_text(json.dumps({"env": "kitchen", "combos": []}))
    (tmp_path / "ml10.json").write_text(json.dumps({"method": "dmil", "suite": "ml10", "split": "test",
                                                    "shots": 3, "mean_success": 0.9}))  # fmt: skip
    capsys.readouterr()
    assert cli.main(["--table-from", str(tmp_path / "broken.json")]) == 2
    missing = "(missing 'trials', 'seeds', 'shots', 'horizon')"  # every missing key, not the first
    assert f"not a `dmil eval --out` file {missing}" in capsys.readouterr().err
    assert cli.main(["--table-from", str(tmp_path / "v4.json"), str(tmp_path / "ml10.json")]) == 2
    assert "do not share a table" in capsys.readouterr().err
    assert cli.main(["--table-from", str(tmp_path / "absent.json")]) == 2
