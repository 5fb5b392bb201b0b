"""DMIL and its ablation variants (the `VARIANTS` registry of core.config) as registry methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dmil_ros.core.adaptation import adapt
from dmil_ros.core.config import ModelConfig
from dmil_ros.core.data import Demo, Normalizer
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import Params
from dmil_ros.core.warm_start import warm_start_skills
from dmil_ros.methods.base import Adaptation, Method, Trainer
from dmil_ros.methods.distributed import Comm, DistributedDMILTrainer


class DMILMethod(Method):
    """Meta-trains both levels with the bi-level loop; adapts with alternating HI/LI steps."""

    def make_trainer(self, params: Params, comm: Comm) -> Trainer:
        return DistributedDMILTrainer(params, self.dmil, comm)

    def initial_params(
        self,
        params: Params,
        demos_by_task: Mapping[str, Sequence[Demo]],
        normalizer: Normalizer,
        model_cfg: ModelConfig,
        seed: int,
    ) -> tuple[Params, dict[str, float]]:
        """The sub-skill warm start when `dmil.skill_warm_start_steps` > 0 (core/warm_start.py).

        Every rank computes it on the same full demo set with the same seed, so all start equal."""
        return warm_start_skills(params, demos_by_task, normalizer, model_cfg, self.dmil, seed)

    def adapt(self, policy: Hierarchy | None, demos: Sequence[Demo], seed: int = 0) -> Adaptation:
        if policy is None:
            raise ValueError(f"{self.name} needs a meta-trained checkpoint to adapt")
        r = adapt(policy, demos, self.dmil.adapt)
        return Adaptation(
            r.hierarchy,
            r.loss_before,
            r.loss_after,
            r.seconds,
            {"accepted": r.accepted, "reason": r.reason, "skill_counts": list(r.skill_counts)},
        )
