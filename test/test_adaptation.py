"""Few-shot adaptation: improves the fit, never mutates its input, refuses bad demos and divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmil_ros.core.adaptation import adapt
from dmil_ros.core.config import AdaptConfig, ModelConfig
from dmil_ros.core.data import Demo, DemoError
from dmil_ros.core.hierarchy import Hierarchy, ObservationError


@pytest.fixture
def hierarchy() -> Hierarchy:
    return Hierarchy.initialize(ModelConfig(6, 3, 3, (32, 32)), seed=0)


def _demo(steps: int = 40, seed: int = 0, obs_dim: int = 6, act_dim: int = 3) -> Demo:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(steps, obs_dim)).astype(np.float32)
    act = np.tanh(obs[:, :act_dim] * 0.5).astype(np.float32)
    return Demo(obs, act, "t")


def test_adaptation_lowers_demo_loss_and_keeps_input(hierarchy):
    before = {k: v.clone() for k, v in hierarchy.params.items()}
    result = adapt(hierarchy, [_demo()], AdaptConfig(steps=20, lr=0.05))
    assert result.accepted, result.reason
    assert result.loss_after < result.loss_before
    assert result.num_demos == 1 and result.num_states == 40 and result.steps == 20
    assert sum(result.skill_counts) == 40
    for k, v in hierarchy.params.items():
        assert torch.equal(v, before[k]), "adapt must not modify the hierarchy it was given"
    assert any(not torch.equal(result.hierarchy.params[k], before[k]) for k in before)


def test_adaptation_reports_progress_after_each_step(hierarchy):
    seen = []
    result = adapt(hierarchy, [_demo()], AdaptConfig(steps=5, lr=0.05),
                   progress=lambda step, steps, loss: seen.append((step, steps, loss)))
    assert [(s, n) for s, n, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert seen[-1][2] == pytest.approx(result.loss_after)


def test_adam_adaptation_fits_faster_than_plain_steps(hierarchy):
    demos = [_demo(), _demo(seed=1)]
    sgd = adapt(hierarchy, demos, AdaptConfig(steps=30, lr=1e-3))
    adam = adapt(hierarchy, demos, AdaptConfig(steps=30, lr=1e-3, optimizer="adam"))
    assert sgd.accepted and adam.accepted, (sgd.reason, adam.reason)
    assert adam.loss_after < 0.9 * sgd.loss_after, (adam.loss_after, sgd.loss_after)
    with pytest.raises(ValueError, match="optimizer"):
        AdaptConfig(optimizer="lbfgs")


def test_adapted_hierarchy_acts(hierarchy):
    result = adapt(hierarchy, [_demo(), _demo(seed=1)], AdaptConfig(steps=3))
    action, skill, probs = result.hierarchy.act(np.zeros(6, np.float32))
    assert action.shape == (3,) and 0 <= skill < 3 and probs.shape == (3,)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5) and int(np.argmax(probs)) == skill


@pytest.mark.parametrize(
    ("demos", "reason"),
    [
        ([], "no demonstrations"),
        ([Demo(np.zeros((0, 6), np.float32), np.zeros((0, 3), np.float32))], "empty"),
        ([_demo(obs_dim=5)], "observation dim 5"),
        ([_demo(act_dim=2)], "action dim 2"),
        ([Demo(np.zeros((4, 6), np.float32), np.zeros((3, 3), np.float32))], "4 observations but 3 actions"),
        ([Demo(np.full((4, 6), np.nan, np.float32), np.zeros((4, 3), np.float32))], "NaN"),
    ],
)
def test_bad_demos_are_refused_with_reason(hierarchy, demos, reason):
    with pytest.raises(DemoError, match=reason):
        adapt(hierarchy, demos)


def test_divergence_is_rolled_back(hierarchy):
    result = adapt(hierarchy, [_demo()], AdaptConfig(steps=5, lr=1e6))
    assert not result.accepted
    assert "kept the previous" in result.reason
    assert result.hierarchy is hierarchy


def test_act_refuses_bad_observations(hierarchy):
    with pytest.raises(ObservationError, match="shape"):
        hierarchy.act(np.zeros(5, np.float32))
    with pytest.raises(ObservationError, match="NaN"):
        hierarchy.act(np.full(6, np.nan, np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_adaptation_on_cuda(hierarchy):
    result = adapt(hierarchy.to("cuda"), [_demo()], AdaptConfig(steps=5, lr=0.05))
    assert result.accepted and result.hierarchy.device.type == "cuda"
    action, _, _ = result.hierarchy.act(np.zeros(6, np.float32))
    assert action.shape == (3,)
