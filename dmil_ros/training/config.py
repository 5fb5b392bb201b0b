"""Run configuration: a YAML file, `--set dotted.key=value` overrides, and its resolved (frozen) form.

The `dmil:` section holds overrides of the method's DMIL variant defaults (core.config.VARIANTS);
the resolved config written into a run directory spells out every value, so re-loading it gives the
same run.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dmil_ros.core.config import ConfigError, DMILConfig, to_dict, typed
from dmil_ros.core.shipped import config_path
from dmil_ros.envs.registry import SPLITS, SUITES, suite_tasks
from dmil_ros.methods.base import BaselineConfig, baseline_config_from_dict
from dmil_ros.methods.registry import dmil_config_for, method_class

DEVICES = ("auto", "cpu", "cuda")
SECTIONS = ("data", "model", "dmil", "baseline", "train")


@dataclass(frozen=True)
class DataSettings:
    path: str = "data/ml10_train_h500.hdf5"  # collected automatically when missing
    demos_per_task: int = 40  # demos collected per task (training + validation)
    validation_demos: int = 4  # per task, held out (the last ones) for validation after adaptation
    horizon: int = 500
    noise_std: float = 0.1
    collect_seed: int = 0
    collect_workers: int = 1
    normalizer_min_std: float = 1e-2  # floor of the observation normaliser's per-feature std
    # Inputs whose std over the training demos is at most this start with zero first-layer weights
    # and are held at their mean during training, so those weights stay 0 (core/constant_inputs.py);
    # 0 = off.
    constant_input_std: float = 0.0
    max_attempts: int = 10  # seeded expert attempts per demo before it counts as missing


@dataclass(frozen=True)
class ModelSettings:
    num_skills: int = 3
    hidden_sizes: tuple[int, ...] = (256, 256, 256)


@dataclass(frozen=True)
class ScheduleSettings:
    iterations: int = 3000
    eval_interval: int = 100  # validate and checkpoint every this many iterations (and at the end)
    log_interval: int = 10
    validation_shots: int = 1  # demos adapted on per task; the other validation demos are the query
    init_from: str = ""  # checkpoint directory to continue from (weights + normalizer; Adam starts fresh)
    # Every this many iterations also keep the weights in snapshots/it<N>/ (unvalidated), so that the
    # number of iterations can be chosen afterwards by closed-loop success; 0 = off.
    snapshot_interval: int = 0


@dataclass(frozen=True)
class TrainConfig:
    method: str = "dmil"
    seed: int = 0
    device: str = "auto"
    torch_threads: int = 0  # 0: leave torch's default (per rank)
    env: str = "metaworld"
    suite: str = "ml10"
    split: str = "train"
    tasks: tuple[str, ...] = ()  # explicit task list; overrides suite/split when given
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    dmil: DMILConfig = field(default_factory=lambda: dmil_config_for("dmil"))
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    train: ScheduleSettings = field(default_factory=ScheduleSettings)

    def task_list(self) -> list[str]:
        return list(self.tasks) if self.tasks else suite_tasks(self.suite, self.split)


_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _coerce(value: Any) -> Any:
    """YAML 1.1 reads `1e-3` (no dot) as a string; turn such strings into floats, recursively."""
    if isinstance(value, str) and _SCIENTIFIC.match(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v) for v in value]
    return value


def _section(cls: type, raw: Any, name: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping, got {raw!r}")
    try:
        return cls(**typed(cls, raw, name))
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name}: {e}") from e


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    raw = _coerce(dict(raw or {}))
    top = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(raw) - top
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {sorted(unknown)}; known: {sorted(top)}")
    given = {k: v for k, v in raw.items() if k not in SECTIONS and v is not None}
    scalars = typed(TrainConfig, given, "")
    method = scalars.get("method", "dmil")
    try:
        method_class(method)
        if not isinstance(raw.get("dmil") or {}, dict):
            raise ConfigError(f"dmil: expected a mapping, got {raw['dmil']!r}")
        dmil = dmil_config_for(method, raw.get("dmil") or {})
        baseline = baseline_config_from_dict(raw.get("baseline"))
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from e
    cfg = TrainConfig(
        method=method,
        seed=scalars.get("seed", 0),
        device=scalars.get("device", "auto"),
        torch_threads=scalars.get("torch_threads", 0),
        env=scalars.get("env", "metaworld"),
        suite=scalars.get("suite", "ml10"),
        split=scalars.get("split", "train"),
        tasks=scalars.get("tasks", ()),
        data=_section(DataSettings, raw.get("data"), "data"),
        model=_section(ModelSettings, raw.get("model"), "model"),
        dmil=dmil,
        baseline=baseline,
        train=_section(ScheduleSettings, raw.get("train"), "train"),
    )
    _check(cfg)
    return cfg


def _check(cfg: TrainConfig) -> None:
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {cfg.device!r}")
    if not cfg.tasks:
        if cfg.suite not in SUITES or cfg.split not in SPLITS:
            raise ConfigError(f"suite/split must be in {SUITES} / {SPLITS}, got {cfg.suite!r}/{cfg.split!r}")
    d, t = cfg.data, cfg.train
    if d.validation_demos <= t.validation_shots:
        raise ConfigError(
            f"data.validation_demos ({d.validation_demos}) must exceed train.validation_shots "
            f"({t.validation_shots}): the rest of the held-out demos are the validation query"
        )
    if d.constant_input_std < 0:
        raise ConfigError(f"data.constant_input_std must be >= 0, got {d.constant_input_std}")
    if not d.normalizer_min_std > 0:
        raise ConfigError(f"data.normalizer_min_std must be > 0, got {d.normalizer_min_std}")
    if d.demos_per_task - d.validation_demos < 1:
        raise ConfigError("data.demos_per_task must leave at least one training demo after validation_demos")
    if t.iterations < 1 or t.eval_interval < 1 or t.log_interval < 1:
        raise ConfigError("train.iterations, eval_interval and log_interval must be >= 1")
    if t.snapshot_interval < 0:
        raise ConfigError(f"train.snapshot_interval must be >= 0 (0 = off), got {t.snapshot_interval}")
    if cfg.model.num_skills < 1 or not cfg.model.hidden_sizes:
        raise ConfigError("model.num_skills must be >= 1 and model.hidden_sizes non-empty")


def parse_override(text: str) -> tuple[list[str], Any]:
    """'dmil.outer_lr=1e-3' -> (['dmil', 'outer_lr'], 0.001); values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set has an empty key: {text!r}")
    return path, _coerce(_yaml(value, f"--set {text}"))


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    raw = dict(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[path[-1]] = value
    return raw


def _yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e}{at})") from None


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """The run config of the YAML file `path` (as given, else the shipped config of that name) with
    `--set` overrides; ConfigError says what is wrong."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = config_path(path)
        try:
            loaded = _yaml(p.read_text(), str(p))
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p} cannot be read: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
        raw = loaded or {}
    return config_from_dict(apply_overrides(raw, overrides))


def resolved_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Every value spelled out (the DMIL config fully resolved, the task list expanded)."""
    d = to_dict(cfg)
    d["tasks"] = cfg.task_list()
    for section in ("model", "baseline"):
        for k, v in d[section].items():
            if isinstance(v, tuple):
                d[section][k] = list(v)
    return d


def dump_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(resolved_dict(cfg), sort_keys=False)
