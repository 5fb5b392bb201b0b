"""Which policy an evaluation runs: a checkpoint (the shipped one by default), a baseline trained on
demand, or nothing at all (BC from scratch, the scripted expert)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dmil_ros
from dmil_ros.core.checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError, load_checkpoint
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.methods.base import Method, baseline_config_from_dict
from dmil_ros.methods.registry import dmil_config_for, is_dmil_variant, make_method, method_class

_log = logging.getLogger(__name__)
SHIPPED_NAME = "metaworld_ml10"


class MissingCheckpoint(FileNotFoundError):
    """No checkpoint where one is needed; the message says where we looked and what to do."""


def shipped_checkpoint_dir() -> Path:
    return Path(dmil_ros.__file__).parent / "checkpoints" / SHIPPED_NAME


def checkpoint_present(directory: Path) -> bool:
    return (directory / CONFIG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


@dataclass(frozen=True)
class ResolvedPolicy:
    method: Method
    policy: Hierarchy | None
    checkpoint: str | None


def _from_checkpoint(directory: Path, method_name: str | None) -> ResolvedPolicy:
    policy, dmil_cfg, meta = load_checkpoint(directory)
    trained_as = str(meta.get("method", "dmil"))
    name = method_name or trained_as
    baseline = baseline_config_from_dict(meta.get("baseline"))
    cls = method_class(name)
    if not cls.needs_training:  # bc-scratch: only the normaliser of the checkpoint is used
        return ResolvedPolicy(make_method(name, None, baseline), policy, str(directory))
    if name != trained_as:
        if not (is_dmil_variant(name) and is_dmil_variant(trained_as)):
            raise CheckpointError(
                f"{directory} was trained as {trained_as!r}; it cannot be evaluated as {name!r}"
            )
        # Another DMIL variant's adaptation (e.g. dmil-high: fine-tune the high level only) on this model.
        variant = dmil_config_for(name).adapt
        adapt = (
            dataclasses.replace(variant, steps=dmil_cfg.adapt.steps, lr=dmil_cfg.adapt.lr)
            if dmil_cfg
            else variant
        )
        dmil_cfg = dataclasses.replace(dmil_cfg or dmil_config_for(name), adapt=adapt)
    method = make_method(name, dmil_cfg, baseline)
    if method.monolithic and policy.config.num_skills != 1:
        raise CheckpointError(f"{directory} (K={policy.config.num_skills}) does not fit method {name!r}")
    return ResolvedPolicy(method, policy, str(directory))


def resolve_policy(
    method_name: str | None,
    checkpoint: str | None,
    *,
    train_config: str | None = None,
    train_overrides: Sequence[str] = (),
    train_out: str | None = None,
    progress: bool = True,
) -> ResolvedPolicy:
    """Raises MissingCheckpoint (no checkpoint where one is needed) or CheckpointError (unusable)."""
    if method_name is not None:
        cls = method_class(method_name)
        if not cls.needs_training and checkpoint is None:
            return ResolvedPolicy(make_method(method_name), None, None)
    if checkpoint is not None:
        d = Path(checkpoint)
        if (d / "best").is_dir() and not checkpoint_present(d):  # a run directory: use its best/
            d = d / "best"
        if not checkpoint_present(d):
            raise MissingCheckpoint(f"no checkpoint at {d} ({CONFIG_FILE} or {WEIGHTS_FILE} missing)")
        return _from_checkpoint(d, method_name)
    if method_name is None or method_name == "dmil":
        d = shipped_checkpoint_dir()
        if not checkpoint_present(d):
            raise MissingCheckpoint(
                f"the shipped checkpoint is absent ({d} lacks {CONFIG_FILE} or {WEIGHTS_FILE}); "
                "train one with `dmil train --config config/train_ml10.yaml --out runs/ml10` "
                "and pass --checkpoint runs/ml10/best"
            )
        return _from_checkpoint(d, method_name)
    return _train_on_demand(method_name, train_config, train_overrides, train_out, progress)


def _train_on_demand(
    name: str, config: str | None, overrides: Sequence[str], out: str | None, progress: bool
) -> ResolvedPolicy:
    """Train `name` with the training config (same demos and budget as DMIL), or reuse that run."""
    from dmil_ros.training.config import load_config
    from dmil_ros.training.runner import train

    run_dir = Path(out or f"runs/eval-{name}")
    if not checkpoint_present(run_dir / "best"):
        cfg = load_config(config or "config/train_ml10.yaml", [*overrides, f"method={name}"])
        _log.info("no checkpoint for %s: training it into %s first", name, run_dir)
        train(cfg, run_dir, progress=progress, overwrite=True)
    else:
        _log.info("reusing the %s checkpoint in %s", name, run_dir / "best")
    return _from_checkpoint(run_dir / "best", name)
