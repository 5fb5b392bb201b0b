"""The sub-skill warm start (core/warm_start.py) and the high-level-first phase of DMILTrainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmil_ros.core import synthetic
from dmil_ros.core.config import ModelConfig, make_dmil_config
from dmil_ros.core.data import fit_normalizer
from dmil_ros.core.dmil import DMILTrainer, meta_gradients
from dmil_ros.core.losses import skill_sq_errors
from dmil_ros.core.networks import init_params, split
from dmil_ros.core.warm_start import em_loss, warm_start_skills


def _synthetic_demos(seed: int = 1):
    rng = np.random.default_rng(seed)
    train_tasks, _ = synthetic.make_tasks(seed)
    demos, labelled = {}, []
    for t in train_tasks:
        rolls = [synthetic.rollout(t, rng) for _ in range(5)]
        demos[t.name] = [d for d, _ in rolls]
        labelled += rolls
    return demos, labelled


def test_warm_start_separates_the_true_controllers():
    """Pooled over tasks the demos are a mixture of the 3 controllers; the warm start finds each one
    (random sub-skills fit none of them)."""
    demos, labelled = _synthetic_demos()
    model = ModelConfig(synthetic.OBS_DIM, synthetic.ACTION_DIM, 3, (64, 64))
    cfg = make_dmil_config("dmil", skill_warm_start_steps=1500, skill_warm_start_restarts=2)
    normalizer = fit_normalizer(demos)
    params = init_params(model, seed=1)
    warm, info = warm_start_skills(params, demos, normalizer, model, cfg, seed=1)
    obs = torch.from_numpy(normalizer(np.concatenate([d.observations for d, _ in labelled])))
    act = torch.from_numpy(np.concatenate([d.actions for d, _ in labelled]))
    truth = np.concatenate([labels for _, labels in labelled])

    def best_error_per_controller(p) -> list[float]:
        err = skill_sq_errors(split(p)[1], obs, act).detach().numpy()
        return [min(float(err[k, truth == c].mean()) for k in range(3)) for c in range(3)]

    assert max(best_error_per_controller(warm)) < 0.05, best_error_per_controller(warm)
    assert max(best_error_per_controller(params)) > 0.2  # the check is not trivially true
    assert info["warm_start_em_loss"] == min(info["warm_start_em_loss_0"], info["warm_start_em_loss_1"])
    assert info["warm_start_em_loss"] == pytest.approx(em_loss(split(warm)[1], obs, act), rel=0.5, abs=1e-3)
    # The high level is not touched, and the result is reproducible.
    assert all(torch.equal(warm[k], params[k]) for k in params if k.startswith("high."))
    again, _ = warm_start_skills(params, demos, normalizer, model, cfg, seed=1)
    assert all(torch.equal(warm[k], again[k]) for k in warm)


def test_warm_start_is_off_by_default():
    demos, _ = _synthetic_demos()
    model = ModelConfig(synthetic.OBS_DIM, synthetic.ACTION_DIM, 3, (16,))
    params = init_params(model, seed=0)
    out, info = warm_start_skills(params, demos, fit_normalizer(demos), model, make_dmil_config("dmil"), 0)
    assert out is params and info == {}


def test_high_first_phase_holds_the_sub_skills_then_steps_both(make_batch):
    model = ModelConfig(4, 2, 3, (16,))
    cfg = make_dmil_config("dmil", inner_lr=0.5, outer_lr=0.05, revive_dead_skills=False,
                           high_first_iterations=2)
    params = init_params(model, seed=0)
    batch = make_batch(4, 3, 5, 4, 2, seed=0, dtype=torch.float32)
    trainer = DMILTrainer(params, cfg)
    for _ in range(2):
        before = trainer.current()
        trainer.step(batch)
        after = trainer.current()
        assert all(torch.equal(after[k], before[k]) for k in after if k.startswith("low.")), "low moved"
        assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("high."))
    # Third step: both levels move, from gradients at the same parameters; the sub-skills take an
    # ordinary *first* Adam step (their moments were never fed zeros while held).
    before = trainer.current()
    grads, _ = meta_gradients(before, batch, cfg)
    trainer.step(batch)
    after = trainer.current()
    for k in after:
        if k.startswith("low."):
            leaf = before[k].clone().requires_grad_(True)
            leaf.grad = grads[k]
            torch.optim.Adam([leaf], lr=cfg.outer_lr).step()
            torch.testing.assert_close(after[k], leaf.detach(), rtol=1e-5, atol=1e-6, msg=k)
        else:
            assert not torch.equal(after[k], before[k]), k


@pytest.mark.parametrize(
    "bad",
    [{"skill_warm_start_steps": -1}, {"high_first_iterations": -1}, {"skill_warm_start_restarts": 0},
     {"skill_warm_start_lr": 0.0}, {"skill_warm_start_batch": 0}],
)
def test_bad_schedule_settings_are_refused(bad):
    with pytest.raises(ValueError):
        make_dmil_config("dmil", **bad)
