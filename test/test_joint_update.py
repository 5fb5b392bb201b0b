"""Section 3.3: both levels are meta-updated *together*, from meta-gradients taken at the same
parameters. The check below fails for a trainer that updates one level before computing the other's
meta-gradient (demonstrated on such a trainer)."""

from __future__ import annotations

import pytest
import torch

from dmil_ros.core.config import make_dmil_config
from dmil_ros.core.data import MetaBatch
from dmil_ros.core.dmil import DMILTrainer, meta_gradients
from dmil_ros.core.networks import Params, init_params, split


class SequentialTrainer(DMILTrainer):
    """The wrong schedule: Adam-step the high level, then compute the sub-skills' meta-gradient."""

    def step(self, batch: MetaBatch) -> dict[str, float]:
        high, low = split(self.params)
        opt_high = torch.optim.Adam(list(high.values()), lr=self.cfg.outer_lr)
        opt_low = torch.optim.Adam(list(low.values()), lr=self.cfg.outer_lr)
        for level, opt in ((high, opt_high), (low, opt_low)):
            grads, _ = meta_gradients({k: v.detach() for k, v in self.params.items()}, batch, self.cfg)
            for k, p in level.items():
                p.grad = grads[k]
            opt.step()
        return {}


def expected_joint_step(params: Params, batch: MetaBatch, cfg) -> Params:
    """One Adam step (first step = lr * sign-like update) from gradients taken at `params`."""
    grads, _ = meta_gradients(params, batch, cfg)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.Adam(list(leaves.values()), lr=cfg.outer_lr)
    for k, p in leaves.items():
        p.grad = grads[k]
    opt.step()
    return {k: v.detach() for k, v in leaves.items()}


def assert_joint_update(trainer_cls: type[DMILTrainer], random_meta_batch) -> None:
    from dmil_ros.core.config import ModelConfig

    model = ModelConfig(4, 2, 3, (32,))
    cfg = make_dmil_config("dmil", inner_lr=0.5, outer_lr=0.5, revive_dead_skills=False)
    params = init_params(model, seed=3)
    batch = random_meta_batch(4, 3, 5, 4, 2, seed=3, dtype=torch.float32)
    trainer = trainer_cls(params, cfg)
    trainer.step(batch)
    expected = expected_joint_step(params, batch, cfg)
    for k in sorted(expected):  # high.* first: a sequential schedule only breaks the low.* entries
        torch.testing.assert_close(trainer.params[k].detach(), expected[k], rtol=1e-5, atol=1e-6, msg=k)


def test_dmil_trainer_updates_both_levels_together(make_batch):
    assert_joint_update(DMILTrainer, make_batch)


def test_check_catches_one_level_after_the_other(make_batch):
    with pytest.raises(AssertionError, match="low\\."):
        assert_joint_update(SequentialTrainer, make_batch)


def test_both_levels_move_in_one_step(tiny_model, make_batch):
    random_meta_batch = make_batch
    cfg = make_dmil_config("dmil", inner_lr=0.1, outer_lr=1e-2)
    params = init_params(tiny_model, seed=0)
    trainer = DMILTrainer(params, cfg)
    trainer.step(random_meta_batch(2, 2, 6, 5, 2, seed=1, dtype=torch.float32))
    high_before, low_before = split(params)
    high_after, low_after = split(trainer.current())
    assert any(not torch.equal(high_before[k], high_after[k]) for k in high_before)
    assert any(not torch.equal(low_before[k], low_after[k]) for k in low_before)
