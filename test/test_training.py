"""`dmil train`: configs, the run directory, determinism, data-parallel ranks, learning on real demos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("metaworld")
pytestmark = pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high")

from dmil_ros.core.bc import action_mse  # noqa: E402
from dmil_ros.core.checkpoint import load_checkpoint  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.data.collect import CollectConfig, collect_demos  # noqa: E402
from dmil_ros.data.demos import split_validation  # noqa: E402
from dmil_ros.data.hdf5_dataset import load_demos  # noqa: E402
from dmil_ros.training import cli  # noqa: E402
from dmil_ros.training.config import ConfigError, config_from_dict, load_config  # noqa: E402
from dmil_ros.training.ddp_check import max_difference, run_check  # noqa: E402
from dmil_ros.training.runner import train  # noqa: E402

TASKS = ["reach-v3", "door-close-v3"]
HORIZON = 150


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "tiny.hdf5"
    collect_demos(path, TASKS, 6, CollectConfig(max_episode_steps=HORIZON), progress=False)
    return path


def tiny(demo_file: Path, **over: object) -> dict:
    raw = {
        "method": "dmil",
        "seed": 0,
        "device": "cpu",
        "torch_threads": 1,
        "tasks": TASKS,
        "data": {"path": str(demo_file), "demos_per_task": 6, "validation_demos": 2, "horizon": HORIZON},
        "model": {"num_skills": 2, "hidden_sizes": [32, 32]},
        "dmil": {
            "inner_lr_high": 0.1,
            "inner_lr_low": 0.01,
            "outer_lr": "3e-3",
            "tasks_per_batch": 2,
            "windows_per_batch": 4,
            "window_length": 8,
        },  # fmt: skip
        "train": {"iterations": 6, "eval_interval": 3, "log_interval": 2},
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            raw[section] = {**raw[section], name: value}
        else:
            raw[section] = value
    return raw


def test_run_directory_has_config_log_tensorboard_and_checkpoints(demo_file: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(tiny(demo_file))
    assert cfg.dmil.outer_lr == pytest.approx(3e-3)  # YAML-1.1 '3e-3' strings become floats
    result = train(cfg, tmp_path / "run", progress=False)
    run = result.run_dir
    assert load_config(run / "config.yaml") == cfg  # the frozen config reproduces the run's config
    assert "validation it 6" in (run / "train.log").read_text()
    kinds = [json.loads(line)["kind"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert kinds.count("train") == 3 and kinds.count("val") == 2
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("last", "best"):
        h, dmil_cfg, meta = load_checkpoint(run / name)
        assert h.config.num_skills == 2 and dmil_cfg == cfg.dmil and meta["method"] == "dmil"
        assert meta["tasks"] == TASKS and np.isfinite(meta["val_mse"])
    assert load_checkpoint(run / "last")[2]["iteration"] == 6
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 6 and summary["iterations_per_second"] > 0
    with pytest.raises(FileExistsError):
        train(cfg, run, progress=False)


def test_snapshots_keep_the_weights_of_their_iteration(demo_file: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(tiny(demo_file, train={"iterations": 4, "eval_interval": 4, "log_interval": 4,
                                                  "snapshot_interval": 2}))  # fmt: skip
    run = train(cfg, tmp_path / "run", progress=False).run_dir
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["it2", "it4"]
    h2, _, meta2 = load_checkpoint(run / "snapshots" / "it2")
    h4, _, meta4 = load_checkpoint(run / "snapshots" / "it4")
    assert (meta2["iteration"], meta4["iteration"]) == (2, 4)
    assert max_difference(h4.params, load_checkpoint(run / "last")[0].params) == 0.0
    assert max_difference(h2.params, h4.params) > 0.0
    # A snapshot at N is what an N-iteration run ships (a recipe's iteration count can be chosen from
    # the snapshots of one longer run): nothing in the loop depends on the total.
    short = config_from_dict(tiny(demo_file, train={"iterations": 2, "eval_interval": 1, "log_interval": 1}))
    alone = train(short, tmp_path / "short", progress=False).run_dir
    assert max_difference(h2.params, load_checkpoint(alone / "last")[0].params) == 0.0
    with pytest.raises(ConfigError, match="snapshot_interval"):
        config_from_dict(tiny(demo_file, train={"iterations": 4, "snapshot_interval": -1}))


def test_same_seed_same_weights(demo_file: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(tiny(demo_file, train={"iterations": 4, "eval_interval": 4, "log_interval": 4}))
    a = train(cfg, tmp_path / "a", progress=False).run_dir
    b = train(cfg, tmp_path / "b", progress=False).run_dir
    assert max_difference(load_checkpoint(a / "last")[0].params, load_checkpoint(b / "last")[0].params) == 0.0


@pytest.mark.parametrize("backend", ["vmap", "routed"])
def test_two_ranks_stay_identical_and_match_one_process(backend: str) -> None:
    ranks, single = run_check("dmil", world=2, steps=3, backend=backend)
    assert max_difference(ranks[0], ranks[1]) == 0.0  # same all-reduced gradient, same Adam step
    assert max_difference(ranks[0], single) < 1e-5  # only the summation order differs


def test_meta_trained_model_beats_random_init_on_held_out_demos(demo_file: Path, tmp_path: Path) -> None:
    raw = tiny(demo_file, train={"iterations": 120, "eval_interval": 120, "log_interval": 40})
    raw["model"] = {"num_skills": 2, "hidden_sizes": [64, 64]}
    cfg = config_from_dict(raw)
    run = train(cfg, tmp_path / "run", progress=False).run_dir
    trained, _, _ = load_checkpoint(run / "best")
    random_init = Hierarchy.initialize(trained.config, seed=1, normalizer=trained.normalizer)
    _, val = split_validation(load_demos(demo_file), 2)
    learned = [action_mse(trained, val[t]) for t in TASKS]
    untrained = [action_mse(random_init, val[t]) for t in TASKS]
    assert all(a < b for a, b in zip(learned, untrained, strict=False)), (learned, untrained)
    assert np.mean(learned) < 0.7 * np.mean(untrained), (learned, untrained)


def test_overrides_unknown_keys_and_cli_errors(demo_file: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny(demo_file)))
    cfg = load_config(path, ["model.hidden_sizes=[16]", "dmil.adapt.steps=7", "method=dmil-soft"])
    assert cfg.model.hidden_sizes == (16,) and cfg.dmil.adapt.steps == 7
    assert cfg.dmil.label_mode == "soft" and cfg.dmil.adapt.label_mode == "soft"  # the variant's defaults
    with pytest.raises(ConfigError, match="model.num_skilz"):
        load_config(path, ["model.num_skilz=3"])
    with pytest.raises(ConfigError, match="validation_demos"):
        load_config(path, ["data.validation_demos=1"])
    with pytest.raises(ConfigError, match="constant_input_std"):
        load_config(path, ["data.constant_input_std=-1"])
    cfg = load_config(path, ["dmil.adapt.optimizer=adam"])
    assert cfg.dmil.adapt.optimizer == "adam"
    with pytest.raises((ConfigError, ValueError), match="optimizer"):
        load_config(path, ["dmil.adapt.optimizer=rmsprop"])
    assert cli.main(["--config", str(path), "--method", "bc-scratch", "--out", str(tmp_path / "x")]) == 2
    assert "nothing to train" in capsys.readouterr().err
    assert cli.main(["--config", str(path), "--print-config", "--set", "seed=3"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["seed"] == 3


def test_cli_trains_a_baseline_end_to_end(demo_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny(demo_file)))
    out = tmp_path / "mtbc"
    assert (
        cli.main(["--config", str(path), "--method", "multitask-bc", "--out", str(out), "--no-progress"]) == 0
    )
    h, _, meta = load_checkpoint(out / "best")
    assert meta["method"] == "multitask-bc" and h.config.num_skills == 1


def test_shipped_recipe_config_is_valid() -> None:
    cfg = load_config(Path(__file__).parents[1] / "config" / "train_ml10.yaml")
    assert cfg.method == "dmil" and cfg.model.num_skills == 3 and len(cfg.task_list()) == 10


@pytest.mark.slow
def test_torchrun_two_ranks_end_to_end(demo_file: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node=2 -m dmil_ros.training.cli` matches the one-process run."""
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed next to this python")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny(demo_file)))
    args = ["-m", "dmil_ros.training.cli", "--config", str(path), "--no-progress"]
    launch = [torchrun, "--nproc_per_node=2", "--master_addr=127.0.0.1", "--master_port=29533"]
    subprocess.run([*launch, *args, "--out", str(tmp_path / "ddp")], check=True, timeout=300)
    assert cli.main([*args[2:], "--out", str(tmp_path / "one")]) == 0
    ddp = load_checkpoint(tmp_path / "ddp" / "last")[0].params
    one = load_checkpoint(tmp_path / "one" / "last")[0].params
    assert max_difference(ddp, one) < 1e-4


def test_interrupt_keeps_the_latest_weights(demo_file: Path, tmp_path: Path, monkeypatch) -> None:
    from dmil_ros.core.dmil import DMILTrainer

    real_apply = DMILTrainer.apply
    calls = {"n": 0}

    def apply_then_ctrl_c(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_apply(self, *args, **kwargs)

    monkeypatch.setattr(DMILTrainer, "apply", apply_then_ctrl_c)
    cfg = config_from_dict(tiny(demo_file, train={"iterations": 50, "eval_interval": 50, "log_interval": 2}))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", progress=False)
    _, _, meta = load_checkpoint(tmp_path / "run" / "last")
    assert meta["interrupted"] is True and meta["iteration"] == 4  # the 5th never completed


def test_training_continues_from_a_checkpoint(demo_file: Path, tmp_path: Path) -> None:
    first = train(config_from_dict(tiny(demo_file)), tmp_path / "a", progress=False).run_dir
    start, _, _ = load_checkpoint(first / "last")
    cfg = config_from_dict(tiny(demo_file, train={"iterations": 2, "eval_interval": 2, "log_interval": 2,
                                                  "init_from": str(first / "last")}))  # fmt: skip
    cont, _, _ = load_checkpoint(train(cfg, tmp_path / "b", progress=False).run_dir / "last")
    np.testing.assert_array_equal(cont.normalizer.mean, start.normalizer.mean)
    assert 0 < max_difference(cont.params, start.params) < 0.1  # moved on from there, not from scratch
