"""The meta-training loop shared by every entry point (synthetic demo, Meta-World, Kitchen)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from dmil_ros.core.config import DMILConfig, ModelConfig
from dmil_ros.core.data import Demo, Normalizer, WindowSampler, concat_demos
from dmil_ros.core.dmil import DMILTrainer
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import init_params
from dmil_ros.core.warm_start import warm_start_skills


def fit_normalizer(demos_by_task: Mapping[str, Sequence[Demo]], min_std: float = 1e-2) -> Normalizer:
    """`min_std` floors each feature's scale: a feature that never moves in training (the excluded
    kitchen object's joint) would otherwise blow up to ~100 standard deviations when it does move."""
    return Normalizer.fit(_all_observations(demos_by_task), min_std)


def constant_inputs(demos_by_task: Mapping[str, Sequence[Demo]], max_std: float) -> np.ndarray:
    """Bool mask of the observation dims whose raw std over all demos is at most `max_std`."""
    return _all_observations(demos_by_task).std(0) <= max_std


def _all_observations(demos_by_task: Mapping[str, Sequence[Demo]]) -> np.ndarray:
    obs, _, _ = concat_demos([d for demos in demos_by_task.values() for d in demos])
    return obs


def hold_inputs(
    demos_by_task: Mapping[str, Sequence[Demo]], inputs: np.ndarray, values: np.ndarray
) -> dict[str, list[Demo]]:
    """The demos with the `inputs` dims (bool mask) set to `values` (the normaliser's mean).

    With blind_inputs' zero weights this keeps the networks exactly blind to them during training:
    a normalised input of exactly 0 gives its weights exactly zero gradient, where the tiny residual
    motion of a "constant" input (std ~1e-4) would, through Adam's scale-free steps, grow them."""
    out: dict[str, list[Demo]] = {}
    for task, demos in demos_by_task.items():
        out[task] = []
        for d in demos:
            obs = np.array(d.observations, np.float32, copy=True)
            obs[:, inputs] = values[inputs]
            out[task].append(Demo(obs, d.actions, d.task))
    return out


def meta_train(
    demos_by_task: Mapping[str, Sequence[Demo]],
    model_cfg: ModelConfig,
    dmil_cfg: DMILConfig,
    iterations: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    normalizer: Normalizer | None = None,
    callback: Callable[[int, dict[str, float], DMILTrainer], None] | None = None,
) -> Hierarchy:
    """Run `iterations` DMIL meta-iterations; `callback(it, metrics, trainer)` after each."""
    torch.manual_seed(seed)
    normalizer = normalizer or fit_normalizer(demos_by_task)
    sampler = WindowSampler(
        demos_by_task, normalizer, dmil_cfg.window_length, dmil_cfg.windows_per_batch, seed
    )
    params = init_params(model_cfg, seed, device)
    params, _ = warm_start_skills(params, demos_by_task, normalizer, model_cfg, dmil_cfg, seed)
    trainer = DMILTrainer(params, dmil_cfg)
    for it in range(iterations):
        metrics = trainer.step(sampler.sample(dmil_cfg.tasks_per_batch).to(device))
        if callback is not None:
            callback(it, metrics, trainer)
    return Hierarchy(model_cfg, trainer.current(), normalizer)
