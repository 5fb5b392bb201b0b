"""Configuration of the hierarchy (model) and of the DMIL algorithm, plus the named variants.

Defaults follow the paper: 4 hidden layers of 512 ReLU units (appendix E.2) and Table 9's
hyper-parameters (alpha=5e-4, beta=1e-4, 16 trajectories a batch, lambda=0.1, 3 fine-tune steps).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

LabelMode = Literal["hard", "soft"]
AdaptOptimizer = Literal["sgd", "adam"]
Backend = Literal["auto", "vmap", "routed"]


class ConfigError(ValueError):
    """A configuration (run config, command-line value, ROS parameter or launch argument) is invalid;
    the message names the key."""


def _fits(value: Any, hint: Any) -> tuple[bool, Any]:
    """(whether `value` fits the type `hint`, the value as that type: ints become floats, lists tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint is str or origin is Literal:
        return isinstance(value, str), value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for option in args:
            ok, converted = (value is None, None) if option is type(None) else _fits(value, option)
            if ok:
                return True, converted
        return False, value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            return False, value
        items = [_fits(v, args[0]) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    return True, value  # nested configs check themselves


def typed(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` for dataclass `cls`, each checked against its field's type; ConfigError names the
    first unknown key or wrong value (`where`.key)."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        names = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise ConfigError(f"unknown key(s) {names}; known: {sorted(known)}")
    out = {}
    for key, value in values.items():
        ok, out[key] = _fits(value, hints[key])
        if not ok:
            name = f"{where}.{key}" if where else key
            raise ConfigError(f"{name}: {value!r} is not {_type_name(hints[key])}")
    return out


def _type_name(hint: Any) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if typing.get_origin(hint) is tuple:
        plural = {int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(typing.get_args(hint)[0], 'values')}"
    options = ["null" if a is type(None) else _type_name(a) for a in typing.get_args(hint)]
    return " or ".join(options) or str(hint)


@dataclass(frozen=True)
class ModelConfig:
    obs_dim: int
    action_dim: int
    num_skills: int = 3
    hidden_sizes: tuple[int, ...] = (512, 512, 512, 512)

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.action_dim < 1:
            raise ValueError(f"obs_dim and action_dim must be >= 1, got {self.obs_dim}, {self.action_dim}")
        if self.num_skills < 1:
            raise ValueError(f"num_skills must be >= 1, got {self.num_skills}")
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden sizes must be >= 1, got {self.hidden_sizes}")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))


@dataclass(frozen=True)
class AdaptConfig:
    """Few-shot adaptation on a new task: alternating first-order HI/LI steps (official evaluation)."""

    steps: int = 3
    lr: float = 1e-2
    lr_high: float | None = None  # high level's step size; None: same as `lr`
    label_mode: LabelMode = "hard"
    continuity_weight: float = 0.1
    adapt_high: bool = True
    adapt_low: bool = True
    # sgd: the official evaluation's plain steps. adam: the same HI/LI alternation with Adam's step
    # sizes (one optimiser per level); plain SGD needs thousands of steps to fit long multi-stage demos.
    optimizer: AdaptOptimizer = "sgd"

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"adapt steps must be >= 0, got {self.steps}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"adapt optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if not self.lr > 0 or (self.lr_high is not None and not self.lr_high > 0):
            raise ValueError(f"adapt learning rates must be > 0, got lr={self.lr}, lr_high={self.lr_high}")

    @property
    def high_lr(self) -> float:
        return self.lr if self.lr_high is None else self.lr_high


@dataclass(frozen=True)
class DMILConfig:
    """One meta-iteration samples `tasks_per_batch` tasks and, per task, four batches of
    `windows_per_batch` contiguous windows of `window_length` states (HI, LI, HO, LO)."""

    # alpha, per level: the paper uses one value; a high level that cannot move in its inner step
    # can only predict the task-averaged labels, so the two are kept separately tunable.
    inner_lr_high: float = 5e-4
    inner_lr_low: float = 5e-4
    outer_lr: float = 1e-4  # beta (Adam)
    tasks_per_batch: int = 10
    windows_per_batch: int = 16
    window_length: int = 16
    label_mode: LabelMode = "hard"
    soft_temperature: float = 0.1  # soft-EM: labels = softmax(-error / temperature)
    continuity_weight: float = 0.1  # lambda; 0 disables the continuity loss (DMIL_nc)
    meta_learn_high: bool = True  # False: no HI inner step (DMIL-Low)
    meta_learn_low: bool = True  # False: no LI inner step (DMIL-High)
    first_order: bool = False
    # Hard EM can starve a sub-skill (never the best, so never routed to, so never trained). A skill
    # whose routed share stays below `dead_skill_share` for `dead_skill_patience` iterations is
    # re-seeded: the busiest skill specialised on the worst-predicted states (codebook reset, as in VQ).
    revive_dead_skills: bool = True
    dead_skill_share: float = 0.02
    dead_skill_patience: int = 50
    # Optional schedule around hard EM's local optima (core/warm_start.py); both off by default.
    # Before meta-training, fit the sub-skills as a hard-EM mixture of regressions on the pooled
    # demos (Adam steps per restart; the restart with the lowest EM loss is kept).
    skill_warm_start_steps: int = 0
    skill_warm_start_restarts: int = 4
    skill_warm_start_lr: float = 1e-3
    skill_warm_start_batch: int = 512
    # For the first `high_first_iterations` meta-iterations only the high level's meta-gradient is
    # applied: warm-started sub-skills would otherwise be re-fitted to the routing of a high level
    # that cannot adapt yet and lose their separation. Every later iteration updates both together.
    high_first_iterations: int = 0
    # How meta-gradients are computed (same maths): "vmap" vectorises tasks (every sub-skill on every
    # state, masked), "routed" loops over tasks and sends states through their routed sub-skill only.
    # "auto": routed on CPU (FLOP-bound: 1/K of the sub-skill work), vmap on accelerators.
    backend: Backend = "auto"
    adapt: AdaptConfig = field(default_factory=AdaptConfig)

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "vmap", "routed"):
            raise ValueError(f"backend must be 'auto', 'vmap' or 'routed', got {self.backend!r}")
        if self.label_mode not in ("hard", "soft"):
            raise ValueError(f"label_mode must be 'hard' or 'soft', got {self.label_mode!r}")
        for name in ("tasks_per_batch", "windows_per_batch", "window_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.window_length < 2 and self.continuity_weight > 0:
            raise ValueError("the continuity loss needs window_length >= 2")
        if self.inner_lr_high < 0 or self.inner_lr_low < 0 or not self.outer_lr > 0:
            raise ValueError("inner learning rates must be >= 0 and outer_lr > 0")
        if self.skill_warm_start_steps < 0 or self.high_first_iterations < 0:
            raise ValueError("skill_warm_start_steps and high_first_iterations must be >= 0")
        if self.skill_warm_start_restarts < 1 or self.skill_warm_start_batch < 1:
            raise ValueError("skill_warm_start_restarts and skill_warm_start_batch must be >= 1")
        if not self.skill_warm_start_lr > 0:
            raise ValueError("skill_warm_start_lr must be > 0")
        if isinstance(self.adapt, dict):
            object.__setattr__(self, "adapt", AdaptConfig(**self.adapt))


# Named variants of the paper (robomimic-style registry: a name maps to config overrides).
# Adaptation of DMIL-High/-Low follows appendix E.3: only the meta-learned level is fine-tuned.
VARIANTS: dict[str, dict[str, Any]] = {
    "dmil": {},
    "dmil-soft": {"label_mode": "soft", "adapt": {"label_mode": "soft"}},
    "dmil-nc": {"continuity_weight": 0.0, "adapt": {"continuity_weight": 0.0}},
    "dmil-high": {"meta_learn_low": False, "adapt": {"adapt_low": False}},
    "dmil-low": {"meta_learn_high": False, "adapt": {"adapt_high": False}},
    "dmil-fo": {"first_order": True},
}


def make_dmil_config(variant: str = "dmil", **overrides: Any) -> DMILConfig:
    """Config for a named variant; `overrides` (and a nested `adapt` dict) win over the variant.

    `inner_lr` sets both levels' inner learning rate at once.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown DMIL variant {variant!r}; choose one of {sorted(VARIANTS)}")
    if "inner_lr" in overrides:
        lr = overrides.pop("inner_lr")
        overrides.setdefault("inner_lr_high", lr)
        overrides.setdefault("inner_lr_low", lr)
    merged: dict[str, Any] = dict(VARIANTS[variant])
    given_adapt = overrides.pop("adapt", {}) or {}
    if not isinstance(given_adapt, dict):
        raise ConfigError(f"dmil.adapt: expected a mapping, got {given_adapt!r}")
    adapt = typed(AdaptConfig, {**merged.pop("adapt", {}), **given_adapt}, "dmil.adapt")
    merged = typed(DMILConfig, {**merged, **overrides}, "dmil")
    return DMILConfig(**merged, adapt=AdaptConfig(**adapt))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    return ModelConfig(
        obs_dim=int(d["obs_dim"]),
        action_dim=int(d["action_dim"]),
        num_skills=int(d["num_skills"]),
        hidden_sizes=tuple(int(h) for h in d["hidden_sizes"]),
    )


def dmil_config_from_dict(d: dict[str, Any]) -> DMILConfig:
    d = dict(d)
    adapt = AdaptConfig(**d.pop("adapt", {}))
    return DMILConfig(**d, adapt=adapt)
