"""Multi-task BC baseline: one monolithic policy pre-trained on all training tasks, fine-tuned on k demos.

Pre-training sees exactly the states DMIL sees (all four window batches of every sampled task) and
takes one Adam step per iteration at `outer_lr`; fine-tuning is `finetune_steps` Adam steps at
`finetune_lr` on the k demos (core.bc.train_bc).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from torch import Tensor
from torch.func import grad_and_value

from dmil_ros.core.bc import action_mse, train_bc
from dmil_ros.core.data import Demo, MetaBatch
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import Params, split
from dmil_ros.methods.base import Adaptation, Method, Trainer
from dmil_ros.methods.distributed import Comm, GradientTrainer
from dmil_ros.methods.mil import bc_loss


def multitask_bc_gradients(params: Params, batch: MetaBatch) -> tuple[Params, dict[str, Tensor]]:
    """Gradient of the pooled action MSE over every state of the batch (tasks weigh equally)."""
    _, low = split(params)
    obs = batch.obs.reshape(-1, batch.obs.shape[-1])
    act = batch.act.reshape(-1, batch.act.shape[-1])
    grads, loss = grad_and_value(bc_loss)(low, obs, act)
    return grads, {"loss": loss.detach(), "routed_mse": loss.detach()}


class MultiTaskBCMethod(Method):
    monolithic = True
    bc_finetune = True

    def make_trainer(self, params: Params, comm: Comm) -> Trainer:
        return GradientTrainer(params, multitask_bc_gradients, self.dmil.outer_lr, "low.", comm)

    def adapt(self, policy: Hierarchy | None, demos: Sequence[Demo], seed: int = 0) -> Adaptation:
        if policy is None:
            raise ValueError("multitask-bc needs a pre-trained checkpoint to fine-tune")
        t0 = time.perf_counter()
        before = action_mse(policy, demos)
        b = self.baseline
        tuned, after = train_bc(
            policy, demos, b.finetune_steps, lr=b.finetune_lr, batch_size=b.batch_size, seed=seed
        )
        return Adaptation(tuned, before, after, time.perf_counter() - t0)
