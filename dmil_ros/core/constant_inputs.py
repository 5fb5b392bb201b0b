"""Inputs that never vary in the training demos (the kitchen's excluded object): find them, start their
first-layer weights at zero, and hold them at their mean during training so those weights stay zero.

Why: such an input gets no gradient, so its weights would stay at their random initialisation; when
it moves at test time they inject noise into every unit (kitchen validation demos: un-adapted action
MSE up to 15, at most 0.5 with them zeroed). Zeroed, the networks ignore it until adaptation on demos
where it moves gives it weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from torch import Tensor

from dmil_ros.core.data import Demo, all_observations
from dmil_ros.core.networks import Params


def constant_inputs(demos_by_task: Mapping[str, Sequence[Demo]], max_std: float) -> np.ndarray:
    """Bool mask of the observation dims whose raw std over all demos is at most `max_std`."""
    return all_observations(demos_by_task).std(0) <= max_std


def blind_inputs(params: Params, inputs: Tensor) -> Params:
    """`params` with the first-layer weights of `inputs` (a bool mask over observation dims) zeroed,
    in both levels."""
    out = dict(params)
    for name in ("high.0.weight", "low.0.weight"):
        w = params[name].clone()
        w[..., inputs.to(w.device)] = 0.0
        out[name] = w
    return out


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
