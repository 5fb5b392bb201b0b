"""Which policy an evaluation runs: a checkpoint (by default the one shipped for the suite), a method
trained on demand, or nothing at all (BC from scratch, the scripted expert).

Kitchen: one policy per excluded object, `<root>/no_<object>/` (a checkpoint or a run directory),
by default under the shipped dmil_ros/checkpoints/kitchen/. `train_or_reuse` is the one place where
an evaluation trains (baselines without a checkpoint, ablations, missing kitchen runs).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dmil_ros.core import shipped
from dmil_ros.core.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    checkpoint_present,
    load_checkpoint,
)
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.envs.kitchen_tasks import SUITE_PREFIX, UnseenCombo
from dmil_ros.methods.base import Method, baseline_config_from_dict
from dmil_ros.methods.registry import dmil_config_for, is_dmil_variant, make_method, method_class

_log = logging.getLogger(__name__)


class MissingCheckpoint(FileNotFoundError):
    """No checkpoint where one is needed; the message says where we looked and what to do."""


@dataclass(frozen=True)
class ResolvedPolicy:
    method: Method
    policy: Hierarchy | None
    checkpoint: str | None

    def with_adapt(
        self,
        steps: int | None = None,
        lr: float | None = None,
        lr_high: float | None = None,
        optimizer: str | None = None,
    ) -> ResolvedPolicy:
        """The same policy with other adaptation settings (None: keep the method's own)."""
        if steps is None and lr is None and lr_high is None and optimizer is None:
            return self
        return dataclasses.replace(self, method=self.method.with_adapt(steps, lr, lr_high, optimizer))


@dataclass(frozen=True)
class OnDemand:
    """How to train a method that has no checkpoint: a training config and `--set` overrides."""

    config: str
    overrides: tuple[str, ...] = ()
    progress: bool = True


def train_or_reuse(
    run_dir: Path, method: str, training: OnDemand, before: Sequence[str] = (), after: Sequence[str] = ()
) -> Path:
    """`run_dir/best`, trained first unless it is already there: `dmil train` with `training`'s config
    and the overrides `before`, then `training`'s own, then `after` and method=`method`."""
    from dmil_ros.training.config import load_config  # training pulls in tensorboard: only when needed
    from dmil_ros.training.runner import train

    best = run_dir / "best"
    if checkpoint_present(best):
        _log.info("reusing %s", best)
        return best
    overrides = [*before, *training.overrides, *after, f"method={method}"]
    cfg = load_config(shipped.config_path(training.config), overrides)
    _log.info("no checkpoint for %s: training it into %s first", method, run_dir)
    train(cfg, run_dir, progress=training.progress, overwrite=True)
    return best


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


def load_policy(checkpoint: str | Path, method_name: str | None = None) -> ResolvedPolicy:
    """A checkpoint directory, or a run directory (its best/), evaluated as `method_name` (default:
    the method it was trained as). MissingCheckpoint or CheckpointError say why not."""
    d = Path(checkpoint)
    if (d / "best").is_dir() and not checkpoint_present(d):
        d = d / "best"
    if not checkpoint_present(d):
        raise MissingCheckpoint(f"no checkpoint at {d} ({CONFIG_FILE} or {WEIGHTS_FILE} missing)")
    return _from_checkpoint(d, method_name)


def resolve_policy(
    method_name: str | None,
    checkpoint: str | None,
    *,
    suite: str = "ml10",
    training: OnDemand | None = None,
    train_out: str | None = None,
) -> ResolvedPolicy:
    """The policy for `method_name` (None: the checkpoint's own method) on `suite`: `checkpoint`,
    else nothing for methods that need none, else the checkpoint shipped for `suite` (DMIL), else a
    run trained on demand with `training` (into `train_out`, default runs/eval-<method>)."""
    if method_name is not None and not method_class(method_name).needs_training and checkpoint is None:
        return ResolvedPolicy(make_method(method_name), None, None)
    if checkpoint is not None:
        return load_policy(checkpoint, method_name)
    if method_name is None or method_name == "dmil":
        d = shipped.suite_checkpoint_dir(suite)
        if not checkpoint_present(d):
            raise MissingCheckpoint(
                f"the shipped checkpoint is absent for --suite {suite} ({d} lacks {CONFIG_FILE} or "
                f"{WEIGHTS_FILE}); "
                f"train one with `dmil train --config <recipe> --out runs/{suite}` and pass "
                f"--checkpoint runs/{suite}/best"
            )
        return _from_checkpoint(d, method_name)
    if training is None:
        raise MissingCheckpoint(f"method {method_name!r} needs a checkpoint: pass --checkpoint")
    run_dir = Path(train_out or f"runs/eval-{method_name}")
    return _from_checkpoint(train_or_reuse(run_dir, method_name, training), method_name)


def kitchen_run_name(excluded: str) -> str:
    return f"no_{excluded}"


def kitchen_policies(
    method: str | None,
    root: str | None,
    combos: Sequence[UnseenCombo],
    training: OnDemand | None = None,
) -> dict[str, ResolvedPolicy]:
    """One policy per excluded object of `combos` from `<root>/no_<object>` (default: the shipped
    kitchen root); with `training`, missing runs under `root` are trained first."""
    excluded = list(dict.fromkeys(c.excluded for c in combos))
    if method is not None and not method_class(method).needs_training and root is None:
        none = resolve_policy(method, None)  # BC from scratch: nothing trained, the same for every combo
        return {o: none for o in excluded}
    if root is None:
        if method not in (None, "dmil"):
            raise MissingCheckpoint(
                f"method {method!r} needs kitchen checkpoints: pass --checkpoint ROOT (ROOT/no_<object>/) "
                f"or --train-missing to train them with {shipped.KITCHEN_RECIPE}"
            )
        base = shipped.kitchen_checkpoint_root()
    else:
        base = Path(root)
    out = {}
    for obj in excluded:
        d = base / kitchen_run_name(obj)
        if training is not None and method is not None:
            train_or_reuse(d, method, training, after=[f"suite={SUITE_PREFIX}{obj}"])
        if not (checkpoint_present(d) or checkpoint_present(d / "best")):
            raise MissingCheckpoint(
                f"no kitchen checkpoint for excluded object {obj!r} at {d}; train it with "
                f"`dmil train --config {shipped.KITCHEN_RECIPE} --set suite={SUITE_PREFIX}{obj} --out {d}`"
            )
        out[obj] = load_policy(d, method)
    return out
