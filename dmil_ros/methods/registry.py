"""Method registry (robomimic-style): a name maps to a class, so training and evaluation treat all
methods alike. DMIL variants come from `core.config.VARIANTS`."""

from __future__ import annotations

from typing import Any

from dmil_ros.core.config import VARIANTS, DMILConfig, make_dmil_config
from dmil_ros.methods.base import BaselineConfig, Method
from dmil_ros.methods.bc_scratch import ScratchBCMethod
from dmil_ros.methods.dmil import DMILMethod
from dmil_ros.methods.expert import ExpertMethod
from dmil_ros.methods.mil import MILMethod
from dmil_ros.methods.multitask_bc import MultiTaskBCMethod

BASELINES: dict[str, type[Method]] = {
    "mil": MILMethod,
    "multitask-bc": MultiTaskBCMethod,
    "bc-scratch": ScratchBCMethod,
    "expert": ExpertMethod,
}


def method_names() -> list[str]:
    return [*VARIANTS, *BASELINES]


def is_dmil_variant(name: str) -> bool:
    return name in VARIANTS


def method_class(name: str) -> type[Method]:
    if name in VARIANTS:
        return DMILMethod
    if name in BASELINES:
        return BASELINES[name]
    raise ValueError(f"unknown method {name!r}; choose one of {', '.join(method_names())}")


def dmil_config_for(name: str, overrides: dict[str, Any] | None = None) -> DMILConfig:
    """The loop settings of `name`: a DMIL variant's own config, else plain DMIL's (MIL/BC share them)."""
    method_class(name)  # validates the name
    return make_dmil_config(name if name in VARIANTS else "dmil", **dict(overrides or {}))


def make_method(
    name: str, dmil: DMILConfig | dict[str, Any] | None = None, baseline: BaselineConfig | None = None
) -> Method:
    """`dmil` may be a resolved config (from a checkpoint) or overrides for the variant's defaults."""
    cls = method_class(name)
    cfg = dmil if isinstance(dmil, DMILConfig) else dmil_config_for(name, dmil)
    return cls(name, cfg, baseline or BaselineConfig())
