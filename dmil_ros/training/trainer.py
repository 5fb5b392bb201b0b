"""The one training loop: a method's trainer stepping on meta-batches of demo windows.

`dmil train` (training/runner.py adds demos on disk, validation, checkpoints and logs around it),
`dmil synthetic` (evaluation/synthetic.py) and the data-parallel check (training/ddp_check.py) all
train through `Trainer`, so the fast synthetic tests exercise the loop `dmil train` runs.

Start: the method's model shape, the observation normaliser fitted on the training demos, fresh
weights (seeded) or those of a checkpoint to continue from, inputs that never vary held blind
(core/constant_inputs.py), then the method's own start (DMIL: the optional sub-skill warm start).
Each step samples `tasks_per_batch` tasks' windows (seeded) and takes one optimiser step; under
torch.distributed every rank does the same and the gradients are averaged (methods/distributed.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from dmil_ros.core.config import ModelConfig
from dmil_ros.core.constant_inputs import blind_inputs, constant_inputs, hold_inputs
from dmil_ros.core.data import Demo, WindowSampler, fit_normalizer
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import init_params
from dmil_ros.methods.base import Method
from dmil_ros.methods.distributed import Comm

_log = logging.getLogger("dmil_ros.training")


class Trainer:
    """Trains `method` on `demos_by_task` (training demos per task); every rank of `comm` builds one."""

    def __init__(
        self,
        method: Method,
        model_cfg: ModelConfig,
        demos_by_task: Mapping[str, Sequence[Demo]],
        *,
        seed: int = 0,
        comm: Comm | None = None,
        device: torch.device | str = "cpu",
        normalizer_min_std: float = 1e-2,
        constant_input_std: float = 0.0,
        start: Hierarchy | None = None,
    ) -> None:
        """`start`: continue from these weights (of `model_cfg`'s shape) and their normaliser (Adam
        starts afresh); `constant_input_std` > 0: inputs whose std is at most this are held blind."""
        torch.manual_seed(seed)
        self.method, self.model_cfg, self.device = method, model_cfg, torch.device(device)
        self.comm = comm or Comm()
        demos: Mapping[str, Sequence[Demo]] = demos_by_task
        constant = None
        if constant_input_std > 0:
            constant = constant_inputs(demos, constant_input_std)
            _log.info("inputs %s never vary in training (std <= %g): held at their mean, weights start at 0",
                      np.flatnonzero(constant).tolist(), constant_input_std)  # fmt: skip
        self.warm_start: dict[str, float] = {}
        if start is not None:
            params = {k: v.to(self.device) for k, v in start.params.items()}
            self.normalizer = start.normalizer
            if constant is not None:  # continued weights stay as blind as they are
                demos = hold_inputs(demos, constant, self.normalizer.mean)
        else:
            params = init_params(model_cfg, seed, self.device)
            self.normalizer = fit_normalizer(demos, normalizer_min_std)
            if constant is not None:
                params = blind_inputs(params, torch.from_numpy(constant))
                demos = hold_inputs(demos, constant, self.normalizer.mean)
            t0 = time.perf_counter()
            params, self.warm_start = method.initial_params(params, demos, self.normalizer, model_cfg, seed)
            if self.warm_start:
                restarts = [f"{v:.4g}" for k, v in self.warm_start.items() if k != "warm_start_em_loss"]
                _log.info("sub-skill warm start (%.1f s): EM loss %.5g (restarts: %s)",
                          time.perf_counter() - t0, self.warm_start["warm_start_em_loss"],
                          ", ".join(restarts))  # fmt: skip
        self._trainer = method.make_trainer(params, self.comm)
        d = method.dmil
        self._sampler = WindowSampler(demos, self.normalizer, d.window_length, d.windows_per_batch, seed)
        self.iterations = 0  # steps completed
        self.step_seconds = 0.0  # time inside steps (sampling included)

    def step(self) -> dict[str, float]:
        """One meta-iteration; its diagnostics (losses, skill use)."""
        t0 = time.perf_counter()
        batch = self._sampler.sample(self.method.dmil.tasks_per_batch).to(self.device)
        metrics = self._trainer.step(batch)
        self.iterations += 1
        self.step_seconds += time.perf_counter() - t0
        return metrics

    def run(self, iterations: int, after_step: Callable[[int, dict[str, float]], None] | None = None) -> None:
        """`iterations` steps; `after_step(completed iterations, diagnostics)` after each."""
        for _ in range(iterations):
            metrics = self.step()
            if after_step is not None:
                after_step(self.iterations, metrics)

    def policy(self) -> Hierarchy:
        """The current weights (a copy, on the CPU) with the run's normaliser."""
        params = {k: v.cpu() for k, v in self._trainer.current().items()}
        return Hierarchy(self.model_cfg, params, self.normalizer)
