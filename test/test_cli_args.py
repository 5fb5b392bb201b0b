"""Every bad argument or config file of the `dmil` commands exits 2 with a one-line reason, before any
work; `--seeds` takes counts, ranges and lists; config paths resolve from the package."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from dmil_ros.arguments import positive_int, seed_set


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("3", (0, 1, 2)),
        ("1", (0,)),
        ("100-102", (100, 101, 102)),
        ("0,5,7", (0, 5, 7)),
        ("0-2,9", (0, 1, 2, 9)),
        (" 7-7 ", (7,)),
        ("4, 2", (4, 2)),
    ],
)
def test_seeds_take_counts_ranges_and_lists(text: str, seeds: tuple[int, ...]) -> None:
    assert seed_set(text) == seeds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-3", "neither a seed"),
        ("a-b", "neither a seed"),
        ("5-2", "runs downwards"),
        ("", "got nothing"),
        ("0", "must be >= 1"),
        ("0,0", "repeat"),
        ("0-2,1", "repeat"),
        ("1,,2", "neither a seed"),
        ("1.5", "neither a seed"),
    ],
)
def test_bad_seeds_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        seed_set(text)


def test_positive_numbers() -> None:
    assert positive_int("4") == 4
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def _refused(main, argv: list[str], capsys, reason: str) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert reason in err[-1], err  # the last line says why
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--seeds", "-3"], "argument --seeds"),
        (["--seeds", "5-2"], "runs downwards"),
        (["--seeds", "0,0"], "repeat"),
        (["--trials", "0"], "argument --trials: must be >= 1"),
        (["--shots", "0"], "argument --shots"),
        (["--shots", "1,x"], "argument --shots"),
        (["--workers", "0"], "argument --workers"),
        (["--horizon", "-5"], "argument --horizon"),
        (["--pool-size", "0"], "argument --pool-size"),
        (["--adapt-lr", "0"], "argument --adapt-lr: must be > 0"),
        (["--adapt-steps", "-1"], "argument --adapt-steps"),
        (["--torch-threads", "-1"], "--torch-threads"),
        (["--ablation-values", "0,2"], "argument --ablation-values"),
    ],
)
def test_eval_refuses_bad_arguments(argv: list[str], reason: str, capsys) -> None:
    from dmil_ros.evaluation.cli import main

    _refused(main, argv, capsys, reason)


def test_eval_refuses_a_missing_malformed_or_wrong_config(tmp_path: Path, capsys) -> None:
    from dmil_ros.evaluation.cli import main

    _refused(main, ["--config", str(tmp_path / "absent.yaml")], capsys, "does not exist")
    (tmp_path / "bad.yaml").write_text("shots: [1, 3\ntrials: 5\n")
    _refused(main, ["--config", str(tmp_path / "bad.yaml")], capsys, "not valid YAML")
    for text, reason in [
        ("- 1\n- 2\n", "expected a mapping"),
        ("trials: abc\n", "argument --trials"),
        ("trials: 0\n", "must be >= 1"),
        ("seeds: 5-2\n", "runs downwards"),
        ("protocol: gym\n", "protocol must be one of"),
        ("json: maybe\n", "json must be true or false"),
        ("warp: 9\n", "unknown option 'warp'"),
        ("suite: {a: 1}\n", "unusable value"),
    ]:
        (tmp_path / "c.yaml").write_text(text)
        _refused(main, ["--config", str(tmp_path / "c.yaml")], capsys, reason)


def test_eval_refuses_unknown_suites_and_protocols_with_exit_2(capsys) -> None:
    from dmil_ros.evaluation.cli import main

    assert main(["--suite", "ml99", "--no-progress"]) == 2
    assert "unknown --suite ml99" in capsys.readouterr().err
    assert main(["--env", "kitchen", "--protocol", "farama", "--no-progress"]) == 2
    assert "protocol" in capsys.readouterr().err


def test_train_refuses_bad_config_files_with_exit_2(tmp_path: Path, capsys) -> None:
    from dmil_ros.training.cli import main

    cases = {
        "absent": (None, "does not exist"),
        "malformed": ("data: {path: x\n", "not valid YAML"),
        "list": ("- 1\n", "expected a mapping"),
        "type": ("train: {iterations: abc}\n", "train.iterations: 'abc' is not an integer"),
        "bool": ("dmil: {first_order: maybe}\n", "dmil.first_order"),
        "tasks": ("tasks: reach-v3\n", "tasks: 'reach-v3' is not a list of strings"),
        "negative": ("train: {iterations: 0}\n", "must be >= 1"),
    }
    for name, (text, reason) in cases.items():
        path = tmp_path / f"{name}.yaml"
        if text is not None:
            path.write_text(text)
        assert main(["--config", str(path), "--print-config"]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and reason in err[0], (name, err)
    assert main(["--config", "config/train_ml10.yaml", "--set", "seed=[1", "--print-config"]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_collect_refuses_bad_counts_and_tasks(tmp_path: Path, capsys) -> None:
    from dmil_ros.data.collect import main

    out = ["--out", str(tmp_path / "d.hdf5")]
    reach = [*out, "--tasks", "reach-v3"]
    for argv, reason in [
        ([*reach, "--n", "-3"], "argument --n: must be >= 1"),
        ([*reach, "--n", "0"], "argument --n: must be >= 1"),
        ([*reach, "--horizon", "0"], "argument --horizon"),
        ([*reach, "--workers", "0"], "argument --workers"),
        ([*reach, "--max-attempts", "0"], "argument --max-attempts"),
        ([*reach, "--noise", "-0.1"], "argument --noise"),
        ([*out, "--suite", "ml99"], "unknown suite"),
        ([*out, "--tasks", "reach-v2"], "unknown Meta-World task"),
        (out, "give --tasks or --suite"),
    ]:
        _refused(main, argv, capsys, reason)
    assert not (tmp_path / "d.hdf5").exists()  # nothing written


def test_synthetic_refuses_zero_iterations(capsys) -> None:
    from dmil_ros.evaluation.synthetic_cli import main

    _refused(main, ["--iterations", "0"], capsys, "argument --iterations")
    _refused(main, ["--draws", "0"], capsys, "argument --draws")


def test_config_paths_resolve_from_the_package_in_any_folder(tmp_path: Path, monkeypatch) -> None:
    from dmil_ros.core import shipped
    from dmil_ros.core.config import ConfigError
    from dmil_ros.training.config import load_config

    monkeypatch.chdir(tmp_path)  # no config/ here
    assert not Path("config/train_ml10.yaml").exists()
    cfg = load_config("config/train_ml10.yaml")
    assert cfg.method == "dmil" and len(cfg.task_list()) == 10
    assert shipped.config_path("train_kitchen.yaml").is_file()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "train_ml10.yaml").write_text("seed: 7\n")  # a file that exists wins
    assert load_config("config/train_ml10.yaml").seed == 7
    with pytest.raises(ConfigError, match="does not exist"):
        shipped.config_path("elsewhere/train_ml10.yaml")
    assert os.path.isfile(shipped.shipped_config("sim.yaml"))  # the ROS graphs' parameter files
