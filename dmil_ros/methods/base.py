"""What every method (DMIL variants and baselines) offers the training loop and the evaluation harness.

A method is trained (or not) on the same meta-batches of the same demos for the same number of
iterations, saved as a `Hierarchy` checkpoint (monolithic policies are hierarchies with K=1), and
adapted to a task from k demos. The harness never needs to know which method it runs.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from dmil_ros.core.config import AdaptConfig, ConfigError, DMILConfig, ModelConfig, typed
from dmil_ros.core.data import Demo, MetaBatch, Normalizer
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import Params
from dmil_ros.methods.distributed import Comm


@dataclass(frozen=True)
class BaselineConfig:
    """Settings only the baselines use (DMIL and MIL share the `DMILConfig` loop settings)."""

    finetune_steps: int = 100  # multitask-bc: Adam steps on the k demos
    finetune_lr: float = 1e-4
    scratch_steps: int = 500  # bc-scratch: Adam steps from a fresh policy
    scratch_lr: float = 1e-3
    scratch_hidden_sizes: tuple[int, ...] = (256, 256, 256)
    batch_size: int = 256
    mil_inner_steps: int = 1  # MAML inner SGD steps per task during meta-training

    def __post_init__(self) -> None:
        object.__setattr__(self, "scratch_hidden_sizes", tuple(int(h) for h in self.scratch_hidden_sizes))
        for name in ("finetune_steps", "scratch_steps", "batch_size", "mil_inner_steps"):
            if getattr(self, name) < 0 or (name == "batch_size" and self.batch_size < 1):
                raise ValueError(f"baseline {name} must be >= {1 if name == 'batch_size' else 0}")


def baseline_config_from_dict(d: dict[str, Any] | None) -> BaselineConfig:
    if d is not None and not isinstance(d, dict):
        raise ConfigError(f"baseline: expected a mapping, got {d!r}")
    return BaselineConfig(**typed(BaselineConfig, dict(d or {}), "baseline"))


@dataclass(frozen=True)
class Adaptation:
    """A method's policy for one task after seeing its k demos. `policy` None: the scripted expert."""

    policy: Hierarchy | None
    loss_before: float = float("nan")  # action MSE on the k demos
    loss_after: float = float("nan")
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


class Trainer(Protocol):
    def step(self, batch: MetaBatch) -> dict[str, float]: ...

    def current(self) -> Params: ...


class Method(ABC):
    """One entry of the method registry. Subclasses set `needs_training` and `monolithic`."""

    needs_training: ClassVar[bool] = True  # False: nothing to meta-/pre-train (no checkpoint needed)
    monolithic: ClassVar[bool] = False  # True: a single policy, stored as a hierarchy with K=1
    bc_finetune: ClassVar[bool] = False  # True: adapts by Adam BC steps (core.bc.train_bc), no high level

    def __init__(self, name: str, dmil: DMILConfig, baseline: BaselineConfig | None = None) -> None:
        self.name = name
        self.dmil = dmil
        self.baseline = baseline or BaselineConfig()

    def model_config(
        self, obs_dim: int, action_dim: int, num_skills: int, hidden_sizes: Sequence[int]
    ) -> ModelConfig:
        return ModelConfig(obs_dim, action_dim, 1 if self.monolithic else num_skills, tuple(hidden_sizes))

    def make_trainer(self, params: Params, comm: Comm) -> Trainer:
        raise ValueError(f"method {self.name!r} has nothing to train")

    def initial_params(
        self,
        params: Params,
        demos_by_task: Mapping[str, Sequence[Demo]],
        normalizer: Normalizer,
        model_cfg: ModelConfig,
        seed: int,
    ) -> tuple[Params, dict[str, float]]:
        """The parameters training starts from (and diagnostics); default: `params` unchanged."""
        return params, {}

    @abstractmethod
    def adapt(self, policy: Hierarchy | None, demos: Sequence[Demo], seed: int = 0) -> Adaptation:
        """The policy to roll out on the task shown by `demos`; never modifies `policy`."""

    def with_adapt(
        self,
        steps: int | None = None,
        lr: float | None = None,
        lr_high: float | None = None,
        optimizer: str | None = None,
    ) -> Method:
        """A copy with a different fine-tuning budget (the fine-tune-steps ablation, CLI overrides).

        DMIL variants and MIL take all four; the BC baselines train with Adam and have no high level,
        so they take `steps` and `lr` only (ValueError otherwise: an override must never be ignored)."""
        if self.bc_finetune and (lr_high is not None or optimizer not in (None, "adam")):
            raise ValueError(f"{self.name} adapts with Adam and has no high level: only steps and lr can "
                             "be overridden")  # fmt: skip
        given = _given(steps=steps, lr=lr, lr_high=lr_high, optimizer=optimizer)
        adapt = AdaptConfig(**{**dataclasses.asdict(self.dmil.adapt), **given})
        dmil = dataclasses.replace(self.dmil, adapt=adapt)
        baseline = dataclasses.replace(self.baseline, **self._baseline_budget(steps, lr))
        return type(self)(self.name, dmil, baseline)

    def _baseline_budget(self, steps: int | None, lr: float | None) -> dict[str, Any]:
        """The BaselineConfig fields that `with_adapt`'s steps and lr set for this method."""
        return _given(finetune_steps=steps, finetune_lr=lr)

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "dmil": dataclasses.asdict(self.dmil),
            "baseline": dataclasses.asdict(self.baseline),
        }


def _given(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}
