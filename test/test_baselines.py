"""Baselines and the method registry, on the synthetic benchmark (no simulator, a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmil_ros.core import synthetic
from dmil_ros.core.bc import action_mse
from dmil_ros.core.config import VARIANTS
from dmil_ros.core.data import WindowSampler, fit_normalizer
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import init_params, split
from dmil_ros.methods.base import BaselineConfig
from dmil_ros.methods.distributed import Comm
from dmil_ros.methods.mil import bc_loss, mil_gradients
from dmil_ros.methods.multitask_bc import multitask_bc_gradients
from dmil_ros.methods.registry import make_method, method_names

torch.set_num_threads(1)
OVERRIDES = {
    "inner_lr_low": 0.05,
    "outer_lr": 3e-3,
    "tasks_per_batch": 4,
    "windows_per_batch": 4,
    "window_length": 8,
}


@pytest.fixture(scope="module")
def demos() -> dict:
    rng = np.random.default_rng(0)
    train_tasks, _ = synthetic.make_tasks(0)
    return {t.name: [synthetic.rollout(t, rng)[0] for _ in range(3)] for t in train_tasks[:4]}


@pytest.fixture(scope="module")
def batch(demos: dict):
    return WindowSampler(demos, fit_normalizer(demos), 8, 4, seed=0).sample(4)


def policy_for(method, demos: dict, seed: int = 0) -> Hierarchy:
    cfg = method.model_config(synthetic.OBS_DIM, synthetic.ACTION_DIM, 3, (32, 32))
    return Hierarchy(cfg, init_params(cfg, seed), fit_normalizer(demos))


def test_registry_covers_dmil_variants_and_baselines() -> None:
    names = method_names()
    assert set(VARIANTS) <= set(names) and {"mil", "multitask-bc", "bc-scratch", "expert"} <= set(names)
    for name in names:
        m = make_method(name)
        assert m.name == name
        assert m.monolithic == (name in ("mil", "multitask-bc", "bc-scratch"))
        assert m.needs_training == (name not in ("bc-scratch", "expert"))
    assert make_method("dmil-soft").dmil.label_mode == "soft"
    assert make_method("dmil-high").dmil.adapt.adapt_low is False
    with pytest.raises(ValueError, match="unknown method"):
        make_method("maml++")


def test_mil_without_inner_step_is_the_query_bc_gradient(batch, demos) -> None:
    params = policy_for(make_method("mil"), demos).params
    grads, _ = mil_gradients(params, batch, inner_lr=0.0, inner_steps=1, first_order=False)
    _, low = split(params)
    low = {k: v.clone().requires_grad_(True) for k, v in low.items()}
    d, a = batch.obs.shape[-1], batch.act.shape[-1]
    per_task = [
        bc_loss(low, batch.obs[i, 2:].reshape(-1, d), batch.act[i, 2:].reshape(-1, a)) for i in range(4)
    ]
    expected = torch.autograd.grad(torch.stack(per_task).mean(), list(low.values()))
    for (name, g), e in zip(grads.items(), expected, strict=False):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6, msg=name)


def test_mil_second_order_differs_from_first_order(batch, demos) -> None:
    params = policy_for(make_method("mil"), demos).params
    so, _ = mil_gradients(params, batch, inner_lr=0.5, inner_steps=2, first_order=False)
    fo, _ = mil_gradients(params, batch, inner_lr=0.5, inner_steps=2, first_order=True)
    assert max(float((so[k] - fo[k]).abs().max()) for k in so) > 1e-6


def test_monolithic_trainers_learn_and_leave_the_unused_high_level_alone(batch, demos) -> None:
    for name in ("mil", "multitask-bc"):
        method = make_method(name, dict(OVERRIDES))
        start = policy_for(method, demos).params
        trainer = method.make_trainer(start, Comm())
        first = trainer.step(batch)["loss"]
        for _ in range(30):
            last = trainer.step(batch)["loss"]
        assert last < first, name
        after = trainer.current()
        assert all(torch.equal(after[k], start[k]) for k in after if k.startswith("high."))


def test_multitask_bc_gradient_is_the_pooled_mse_gradient(batch, demos) -> None:
    params = policy_for(make_method("multitask-bc"), demos).params
    grads, aux = multitask_bc_gradients(params, batch)
    _, low = split(params)
    low = {k: v.clone().requires_grad_(True) for k, v in low.items()}
    loss = bc_loss(
        low, batch.obs.reshape(-1, batch.obs.shape[-1]), batch.act.reshape(-1, batch.act.shape[-1])
    )
    for g, e in zip(grads.values(), torch.autograd.grad(loss, list(low.values())), strict=False):
        torch.testing.assert_close(g, e)
    assert float(aux["loss"]) == pytest.approx(float(loss.detach()))


@pytest.mark.parametrize("name", ["mil", "multitask-bc", "bc-scratch", "dmil"])
def test_adaptation_fits_the_demos_without_touching_the_policy(name: str, demos) -> None:
    baseline = BaselineConfig(
        finetune_steps=50, finetune_lr=1e-3, scratch_steps=200, scratch_hidden_sizes=(32,)
    )
    method = make_method(name, {**OVERRIDES, "adapt": {"steps": 20, "lr": 0.05}}, baseline)
    policy = policy_for(method, demos)
    frozen = {k: v.clone() for k, v in policy.params.items()}
    few = next(iter(demos.values()))[:1]
    result = method.adapt(policy, few, seed=0)
    assert result.policy is not None and result.loss_after < result.loss_before
    assert action_mse(result.policy, few) < action_mse(policy, few) or name == "bc-scratch"
    assert all(torch.equal(policy.params[k], frozen[k]) for k in frozen)
    if name == "bc-scratch":
        assert result.policy.normalizer is policy.normalizer  # only the normaliser comes from a checkpoint
        assert result.policy.config.hidden_sizes == (32,)
        alone = method.adapt(None, few, seed=0)  # no checkpoint at all: normaliser fitted on the demos
        assert alone.policy is not None and alone.loss_after < alone.loss_before


def test_expert_and_adapt_overrides() -> None:
    assert make_method("expert").adapt(None, []).policy is None
    m = make_method("dmil").with_adapt(steps=42, lr=0.2)
    assert (m.dmil.adapt.steps, m.dmil.adapt.lr) == (42, 0.2)
    b = make_method("multitask-bc").with_adapt(steps=7)
    assert b.baseline.finetune_steps == 7 and b.dmil.adapt.steps == 7
    s = make_method("bc-scratch").with_adapt(steps=9, lr=3e-4)  # its budget is the scratch one
    assert (s.baseline.scratch_steps, s.baseline.scratch_lr) == (9, 3e-4)
    for name in ("bc-scratch", "multitask-bc"):
        with pytest.raises(ValueError, match="only steps and lr"):
            make_method(name).with_adapt(lr_high=0.1)
        with pytest.raises(ValueError, match="only steps and lr"):
            make_method(name).with_adapt(optimizer="sgd")
    with pytest.raises(ValueError, match="needs a"):
        make_method("mil").adapt(None, [])
