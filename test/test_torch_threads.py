"""`--torch-threads`: one option shared by `dmil eval` and `dmil synthetic`."""

from __future__ import annotations

import argparse

import pytest
import torch

from dmil_ros.evaluation.cli import parse_args
from dmil_ros.torch_threads import add_torch_threads_argument, use_torch_threads


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_torch_threads_argument(p, "tests")
    return p


def test_default_is_one_and_zero_keeps_torch_default() -> None:
    p = _parser()
    assert p.parse_args([]).torch_threads == 1
    before = torch.get_num_threads()
    use_torch_threads(0)
    assert torch.get_num_threads() == before


def test_positive_count_is_applied() -> None:
    before = torch.get_num_threads()
    try:
        use_torch_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_negative_count_is_refused_by_eval(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--torch-threads", "-1"])
    assert "--torch-threads must be >= 0" in capsys.readouterr().err
