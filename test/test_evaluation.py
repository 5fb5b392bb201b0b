"""`dmil eval`: the expert through the harness, JSON/table output, seeds, workers, ablation smoke runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("metaworld")
pytestmark = pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high")

import dmil_ros  # noqa: E402
from dmil_ros.core import shipped  # noqa: E402
from dmil_ros.evaluation import cli, policies  # noqa: E402
from dmil_ros.evaluation.protocol import horizon_for  # noqa: E402
from dmil_ros.evaluation.rollout import AdaptJob, RolloutRunner, rollout_jobs  # noqa: E402
from dmil_ros.evaluation.seeds import draw_demo_indices, trial_seeds  # noqa: E402
from dmil_ros.evaluation.table import render_table  # noqa: E402
from dmil_ros.training.config import config_from_dict  # noqa: E402
from dmil_ros.training.runner import train  # noqa: E402

TASKS = ["reach-v3", "door-close-v3"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    raw = {
        "method": "dmil", "device": "cpu", "torch_threads": 1, "tasks": TASKS,
        "data": {"path": str(root / "t.hdf5"), "demos_per_task": 4, "validation_demos": 2, "horizon": 150},
        "model": {"num_skills": 2, "hidden_sizes": [32, 32]},
        "dmil": {"inner_lr_high": 0.1, "inner_lr_low": 0.01, "outer_lr": 3e-3, "tasks_per_batch": 2,
                 "windows_per_batch": 4, "window_length": 8},
        "train": {"iterations": 4, "eval_interval": 4, "log_interval": 4},
    }  # fmt: skip
    (root / "train.yaml").write_text(yaml.safe_dump(raw))
    run = train(config_from_dict(raw), root / "run", progress=False).run_dir
    return {"root": root, "run": run, "config": root / "train.yaml", "pool": root / "pool.hdf5"}


def _eval(argv: list[str], capsys) -> dict:
    assert cli.main([*argv, "--json", "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])  # the JSON is the last stdout line


def test_expert_through_the_harness_succeeds(work, capsys) -> None:
    table = work["root"] / "expert.md"
    res = _eval(["--method", "expert", "--tasks", ",".join(TASKS), "--shots", "1", "--trials", "5",
                 "--seeds", "1", "--pool", str(work["root"] / "pool300.hdf5"), "--pool-size", "2",
                 "--table", str(table)], capsys)  # fmt: skip
    assert res["protocol"] == "official" and res["horizon"] == 300 and res["method"] == "expert"
    assert res["per_task"] == {
        "reach-v3": pytest.approx(1.0, abs=0.2),
        "door-close-v3": pytest.approx(1.0, abs=0.2),
    }
    assert res["mean_success"] >= 0.9
    assert "| expert |" in table.read_text()


def test_eval_json_and_table_for_a_checkpoint(work, capsys) -> None:
    common = ["--checkpoint", str(work["run"]), "--tasks", "reach-v3", "--trials", "2", "--seeds", "2",
              "--horizon", "40", "--pool", str(work["pool"]), "--pool-size", "3"]  # fmt: skip
    one = _eval([*common, "--shots", "1", "--table", str(work["root"] / "t1.md")], capsys)
    for key in ("mean_success", "per_task", "stderr", "per_seed", "protocol", "horizon", "shots", "method",
                "checkpoint"):  # fmt: skip
        assert key in one
    # The numbers agree with each other: seeds' rates are multiples of 1/trials, their mean is the
    # headline, the standard error is theirs, every cell and summary says the same.
    assert len(one["per_seed"]) == 2 and all(r in (0.0, 0.5, 1.0) for r in one["per_seed"])
    assert one["mean_success"] == pytest.approx(sum(one["per_seed"]) / 2)
    assert one["stderr"] == pytest.approx(abs(one["per_seed"][0] - one["per_seed"][1]) / 2)
    assert one["per_task_per_seed"] == {"reach-v3": one["per_seed"]} and one["episodes"] == 4
    assert one["cells"] == [{k: v for k, v in one.items() if k in one["cells"][0]}]
    assert one["protocol"] == "official" and one["trials"] == 2
    assert one["method"] == "dmil" and one["shots"] == 1 and one["horizon"] == 40 and one["seeds"] == [0, 1]
    assert set(one["per_task"]) == {"reach-v3"} and 0.0 <= one["mean_success"] <= 1.0
    assert one["checkpoint"].endswith("best")  # a run directory resolves to its best/ checkpoint
    common[common.index(str(work["pool"]))] = str(work["root"] / "pool500.hdf5")  # pools are per protocol
    two = _eval([*common, "--shots", "1,3", "--protocol", "farama", "--table", str(work["root"] / "t2.md"),
                 "--out", str(work["root"] / "two.json")], capsys)  # fmt: skip
    assert set(two["mean_success"]) == {"custom/test/1-shot", "custom/test/3-shot"} and len(two["cells"]) == 2
    assert two["protocol"] == "farama"
    table = (work["root"] / "t2.md").read_text()
    assert "1-shot" in table and "3-shot" in table and "farama" in table
    assert (
        cli.main(["--table-from", str(work["root"] / "two.json"), "--table", str(work["root"] / "t3.md")])
        == 0
    )


def test_missing_shipped_checkpoint_is_a_clear_error(monkeypatch, tmp_path: Path, capsys) -> None:
    package = Path(dmil_ros.__file__).parent
    assert shipped.suite_checkpoint_dir("ml10") == package / "checkpoints" / "metaworld_ml10"
    monkeypatch.setattr(shipped, "checkpoints_root", lambda: tmp_path / "absent")
    assert cli.main(["--suite", "ml10", "--split", "test", "--shots", "3", "--trials", "20", "--json"]) == 2
    err = capsys.readouterr().err
    assert "shipped checkpoint is absent" in err and str(tmp_path / "absent") in err


def test_seeds_protocols_and_table() -> None:
    assert horizon_for("official") == 300 and horizon_for("farama") == 500 and horizon_for("farama", 50) == 50
    with pytest.raises(ValueError):
        horizon_for("gym")
    assert draw_demo_indices(10, 3, "reach-v3", 0) == draw_demo_indices(10, 3, "reach-v3", 0)
    assert draw_demo_indices(10, 3, "reach-v3", 0) != draw_demo_indices(10, 3, "reach-v3", 1)
    seeds = trial_seeds("reach-v3", 0, 20)
    assert len(set(seeds)) == 20 and set(trial_seeds("reach-v3", 0, 20, exclude=seeds[:5])).isdisjoint(
        seeds[:5]
    )
    cell = {"suite": "ml10", "split": "test", "shots": 3, "mean": 0.5, "stderr": 0.01, "seeds": [0, 1],
            "protocol": "official", "horizon": 300, "trials": 20, "checkpoint": "x"}  # fmt: skip
    table = render_table([("dmil", [cell, {**cell, "split": "train", "shots": 1}])], "t")
    header = table.splitlines()[2]
    assert header.index("meta-training 1-shot") < header.index("meta-testing 3-shot")
    assert "0.500 ± 0.010" in table and "official (horizon 300)" in table


def test_adaptations_in_workers_match_the_serial_ones(work) -> None:
    """On a pool, adaptations and episodes run in the workers: same adapted weights, same episodes, same
    order as in this process."""
    import numpy as np
    import torch

    from dmil_ros.core.data import Demo

    resolved = policies.resolve_policy(None, str(work["run"]))
    rng = np.random.default_rng(0)
    demo = Demo(rng.normal(size=(40, 39)).astype(np.float32), rng.uniform(-1, 1, (40, 4)).astype(np.float32))
    method, policy = resolved.method, resolved.policy
    jobs = [AdaptJob(method, policy, (demo,), seed, key=(t, seed)) for t in TASKS for seed in (0, 1)]

    def rollouts(key, adapted):
        return rollout_jobs("metaworld", key[0], 20, adapted.policy, [3, 4, 5, 6, 7, 8], key)

    results = []
    for workers in (1, 2):
        with RolloutRunner(workers) as runner:
            results.append(runner.adapt_and_run(jobs, rollouts))
    (serial_adapted, serial_eps), (pool_adapted, pool_eps) = results
    assert list(pool_adapted) == list(serial_adapted) == [j.key for j in jobs]
    for key, a in serial_adapted.items():
        b = pool_adapted[key]
        assert a.loss_after == b.loss_after and a.loss_before == b.loss_before
        for name, w in a.policy.params.items():
            assert torch.equal(w, b.policy.params[name]), name
    assert list(pool_eps) == list(serial_eps)  # (task, seed, 0) and (task, seed, 5) per adaptation
    assert pool_eps == serial_eps
    assert len(serial_eps) == 2 * len(jobs)


def test_ablations_smoke(work, capsys) -> None:
    common = ["--tasks", "reach-v3", "--shots", "1", "--trials", "2", "--horizon", "30",
              "--pool", str(work["pool"]), "--pool-size", "3"]  # fmt: skip
    ft = _eval([*common, "--ablation", "finetune-steps", "--ablation-values", "1,5", "--checkpoint", str(work["run"]),  # noqa: E501
                "--table", str(work["root"] / "ft.md")], capsys)  # fmt: skip
    assert ft["ablation"] == "finetune-steps" and list(ft["rows"]) == ["1", "5"]
    assert "| Range |" in (work["root"] / "ft.md").read_text()
    k = _eval([*common, "--ablation", "k", "--ablation-values", "1,2", "--train-config", str(work["config"]),
               "--set", "train.iterations=2", "--ablation-out", str(work["root"] / "abl"),
               "--table", str(work["root"] / "k.md")], capsys)  # fmt: skip
    assert list(k["rows"]) == ["1", "2"] and len(k["rows"]["2"]) == 2  # meta-train and meta-test cells
    assert (work["root"] / "abl" / "k2" / "best" / "config.json").is_file()
