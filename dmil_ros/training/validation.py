"""Validation during training: action MSE after few-shot adaptation on held-out demos of the train tasks.

Per task the first `shots` held-out demos are adapted on (the method's own adaptation, e.g.
core.adaptation.adapt for DMIL) and the routed action MSE is measured on the remaining ones: the
same quantity few-shot evaluation depends on, without running the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dmil_ros.core.bc import action_mse
from dmil_ros.core.data import Demo
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.methods.base import Method


def validate(
    method: Method, policy: Hierarchy, demos: Mapping[str, Sequence[Demo]], shots: int, seed: int = 0
) -> dict[str, float]:
    """{'val_mse': adapted, 'val_mse_unadapted': before adaptation, 'val_mse/<task>': ...}."""
    out: dict[str, float] = {}
    adapted, unadapted = [], []
    for i, (task, ds) in enumerate(sorted(demos.items())):
        support, query = list(ds[:shots]), list(ds[shots:])
        result = method.adapt(policy, support, seed=seed + i)
        assert result.policy is not None, "validation needs a learned policy"
        adapted.append(action_mse(result.policy, query))
        unadapted.append(action_mse(policy, query))
        out[f"val_mse/{task}"] = adapted[-1]
    out["val_mse"] = float(np.mean(adapted))
    out["val_mse_unadapted"] = float(np.mean(unadapted))
    return out
