"""BC from scratch on the k demos: a fresh monolithic policy, nothing learned from other tasks.

The only thing a checkpoint may contribute is its observation normaliser (feature scaling fitted on
the training demos); without one the normaliser is fitted on the k demos, with a floor on the
standard deviation because 1-3 demos leave many dimensions (goal, object start) nearly constant.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dmil_ros.core.bc import action_mse, new_bc_policy, train_bc
from dmil_ros.core.data import Demo, Normalizer, concat_demos
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.methods.base import Adaptation, Method, _given

MIN_STD_FEW_DEMOS = 0.1


class ScratchBCMethod(Method):
    needs_training = False
    monolithic = True
    bc_finetune = True

    def _baseline_budget(self, steps: int | None, lr: float | None) -> dict[str, Any]:
        return _given(scratch_steps=steps, scratch_lr=lr)

    def adapt(self, policy: Hierarchy | None, demos: Sequence[Demo], seed: int = 0) -> Adaptation:
        t0 = time.perf_counter()
        obs, act, _ = concat_demos(demos)
        normalizer = policy.normalizer if policy is not None else Normalizer.fit(obs, MIN_STD_FEW_DEMOS)
        b = self.baseline
        fresh = new_bc_policy(obs.shape[1], act.shape[1], b.scratch_hidden_sizes, normalizer, seed)
        before = action_mse(fresh, demos)
        trained, after = train_bc(
            fresh, demos, b.scratch_steps, lr=b.scratch_lr, batch_size=b.batch_size, seed=seed
        )
        return Adaptation(trained, before, after, time.perf_counter() - t0)
