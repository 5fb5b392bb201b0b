"""Core invariants: ROS-free imports, determinism under a seed, config validation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dmil_ros.core.config import ModelConfig, make_dmil_config
from dmil_ros.core.data import Demo, DemoError, Normalizer, WindowSampler
from dmil_ros.methods.registry import make_method
from dmil_ros.training.trainer import Trainer


def test_core_imports_without_ros():
    code = (  # every module of the core, whatever it holds
        "import importlib, pkgutil, sys, dmil_ros.core as core\n"
        "names = [m.name for m in pkgutil.iter_modules(core.__path__, 'dmil_ros.core.')]\n"
        "assert len(names) >= 10, names\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rosidl_runtime_py', 'launch')]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _demos(seed: int) -> dict[str, list[Demo]]:
    rng = np.random.default_rng(seed)
    return {
        f"t{i}": [
            Demo(rng.normal(size=(20, 3)).astype(np.float32), rng.normal(size=(20, 2)).astype(np.float32))
            for _ in range(3)
        ]
        for i in range(3)
    }


def test_meta_training_is_deterministic_under_a_seed():
    cfg = make_dmil_config(
        "dmil", inner_lr=0.1, outer_lr=1e-2, tasks_per_batch=2, windows_per_batch=2, window_length=5
    )
    model = ModelConfig(3, 2, 2, (8,))

    def meta_train(demos, seed: int):
        trainer = Trainer(make_method("dmil", cfg), model, demos, seed=seed)
        trainer.run(5)
        return trainer.policy()

    a = meta_train(_demos(0), seed=1)
    b = meta_train(_demos(0), seed=1)
    c = meta_train(_demos(0), seed=2)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert any(not torch.equal(a.params[k], c.params[k]) for k in a.params)


def test_window_sampler_keeps_windows_contiguous():
    demo = Demo(np.arange(30, dtype=np.float32).reshape(30, 1), np.zeros((30, 1), np.float32))
    sampler = WindowSampler({"t": [demo]}, Normalizer.identity(1), window_length=6, windows_per_batch=4)
    batch = sampler.sample(1)
    obs = batch.obs[0, :, :, 0].reshape(4, 4, 6)
    assert torch.all(obs[..., 1:] - obs[..., :-1] == 1)
    assert batch.next_same.tolist() == ([1.0] * 5 + [0.0]) * 3 + [1.0] * 5


def test_sampler_refuses_too_short_demos():
    with pytest.raises(DemoError, match=">= 10 steps"):
        WindowSampler(
            {"t": [Demo(np.zeros((4, 1), np.float32), np.zeros((4, 1), np.float32))]},
            Normalizer.identity(1),
            window_length=10,
            windows_per_batch=1,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"label_mode": "medium"}, "label_mode"),
        ({"window_length": 1}, "continuity"),
        ({"outer_lr": 0}, "outer_lr"),
    ],
)
def test_bad_config_values_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_dmil_config("dmil", **overrides)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown DMIL variant"):
        make_dmil_config("dmil-turbo")


def test_blinded_inputs_are_ignored_by_both_levels():
    from dmil_ros.core.constant_inputs import blind_inputs, constant_inputs
    from dmil_ros.core.hierarchy import Hierarchy

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(50, 6)).astype(np.float32)
    obs[:, [1, 4]] = 0.25  # never vary
    mask = constant_inputs({"t": [Demo(obs, np.zeros((50, 2), np.float32))]}, 1e-3)
    assert mask.tolist() == [False, True, False, False, True, False]

    h = Hierarchy.initialize(ModelConfig(6, 2, 3, (16, 16)), seed=0)
    blind = Hierarchy(h.config, blind_inputs(h.params, torch.from_numpy(mask)), h.normalizer)
    moved = obs.copy()
    moved[:, [1, 4]] = rng.normal(size=(50, 2)) * 5  # the unseen object moves
    for hh, same in ((blind, True), (h, False)):
        a0, _, p0 = hh.predict(obs)
        a1, _, p1 = hh.predict(moved)
        assert np.allclose(a0, a1) == same and np.allclose(p0, p1) == same
    for name, w in blind.params.items():  # nothing else touched
        if name not in ("high.0.weight", "low.0.weight"):
            assert torch.equal(w, h.params[name])
        else:
            assert torch.equal(w[..., ~torch.from_numpy(mask)], h.params[name][..., ~torch.from_numpy(mask)])
