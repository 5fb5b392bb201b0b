"""The training run: demos -> meta-/pre-training -> validated checkpoints, all in one run directory.

Run directory (written by rank 0 only):
  config.yaml         the resolved configuration (re-loadable with `dmil train --config`)
  train.log           the log of the run
  metrics.jsonl       one JSON line per log interval and per validation
  tensorboard/        TensorBoard scalars (train/*, val/*, perf/*)
  last/  best/        checkpoints (core.checkpoint); best = lowest validation MSE after adaptation
  snapshots/it<N>/    with train.snapshot_interval: the weights every that many iterations
  summary.json        iterations, wall time, iterations/s, best validation
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from dmil_ros.core.checkpoint import load_checkpoint, save_checkpoint
from dmil_ros.data.collect import CollectConfig
from dmil_ros.data.demos import ensure_demos, split_validation
from dmil_ros.methods.base import Method
from dmil_ros.methods.distributed import Comm
from dmil_ros.methods.registry import make_method
from dmil_ros.training.config import ConfigError, TrainConfig, dump_yaml
from dmil_ros.training.trainer import Trainer
from dmil_ros.training.validation import validate

_log = logging.getLogger("dmil_ros.training")


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    iterations: int
    train_seconds: float  # time inside training steps (sampling included, validation excluded)
    wall_seconds: float
    iterations_per_second: float
    best_val_mse: float
    last_val_mse: float


def resolve_device(name: str, comm: Comm) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but torch.cuda.is_available() is False")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device(f"cuda:{comm.local_rank}")
    return torch.device("cpu")


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"run directory {run_dir} is not empty; pass --overwrite or another --out")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


class _RunLog:
    """File log + metrics.jsonl + TensorBoard, on rank 0 only (no-ops elsewhere)."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self._handler: logging.Handler | None = None
        self._writer: Any = None
        self._jsonl: Any = None
        if run_dir is None:
            return
        self._handler = logging.FileHandler(run_dir / "train.log")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for name in ("dmil_ros.training", "dmil_ros.data"):
            logging.getLogger(name).addHandler(self._handler)
        _log.setLevel(logging.INFO)
        from torch.utils.tensorboard import SummaryWriter  # imported lazily: it pulls in tensorboard

        self._writer = SummaryWriter(str(run_dir / "tensorboard"))
        self._jsonl = open(run_dir / "metrics.jsonl", "a")

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self._writer is None:
            return
        for k, v in values.items():
            self._writer.add_scalar(f"{prefix}/{k}", v, step)
        self._jsonl.write(json.dumps({"kind": prefix, "iteration": step, **values}) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._jsonl.close()
        if self._handler is not None:
            for name in ("dmil_ros.training", "dmil_ros.data"):
                logging.getLogger(name).removeHandler(self._handler)
            self._handler.close()


def _checkpoint_meta(
    cfg: TrainConfig, method: Method, iteration: int, val: dict[str, float]
) -> dict[str, Any]:
    return {
        "method": method.name,
        "baseline": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(method.baseline).items()},
        "iteration": iteration,
        "val_mse": val["val_mse"],
        "val_mse_unadapted": val["val_mse_unadapted"],
        "env": cfg.env,
        "suite": cfg.suite,
        "split": cfg.split,
        "tasks": cfg.task_list(),
        "seed": cfg.seed,
        "dataset": cfg.data.path,
        "horizon": cfg.data.horizon,
        "created_by": "dmil train",
    }


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    comm: Comm | None = None,
    *,
    progress: bool = True,
    overwrite: bool = False,
) -> TrainResult:
    """Train `cfg.method` on the demos of `cfg`'s tasks; every rank of `comm` must call this."""
    comm = comm or Comm()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    method = make_method(cfg.method, cfg.dmil, cfg.baseline)
    if not method.needs_training:
        raise ConfigError(
            f"method {cfg.method!r} has nothing to train (it is evaluated directly by `dmil eval`)"
        )
    if comm.is_main:
        _prepare_run_dir(run_dir, overwrite)
        (run_dir / "config.yaml").write_text(dump_yaml(cfg))
    log = _RunLog(run_dir if comm.is_main else None)
    try:
        return _train(cfg, method, run_dir, comm, log, progress, t_start)
    finally:
        log.close()


def _train(
    cfg: TrainConfig, method: Method, run_dir: Path, comm: Comm, log: _RunLog, progress: bool, t_start: float
) -> TrainResult:
    device = resolve_device(cfg.device, comm)
    tasks = cfg.task_list()
    d = cfg.data
    collect_cfg = CollectConfig(
        env=cfg.env, max_episode_steps=d.horizon, noise_std=d.noise_std, base_seed=d.collect_seed,
        max_attempts=d.max_attempts,
    )
    suite = None if cfg.tasks else cfg.suite
    if comm.is_main:  # only rank 0 collects; the others wait, then read the finished file
        ensure_demos(d.path, tasks, d.demos_per_task, collect_cfg, d.collect_workers, suite, progress)
    comm.barrier()
    demos = ensure_demos(d.path, tasks, d.demos_per_task, collect_cfg, d.collect_workers, suite, False)
    train_demos, val_demos = split_validation(demos, d.validation_demos)
    first = next(iter(train_demos.values()))[0]
    model_cfg = method.model_config(
        first.observations.shape[1], first.actions.shape[1], cfg.model.num_skills, cfg.model.hidden_sizes
    )
    start = None
    if cfg.train.init_from:
        start, _, _ = load_checkpoint(cfg.train.init_from, device)
        if start.config != model_cfg:
            raise ConfigError(f"train.init_from {cfg.train.init_from}: model {start.config} != {model_cfg}")
    trainer = Trainer(
        method, model_cfg, train_demos, seed=cfg.seed, comm=comm, device=device,
        normalizer_min_std=d.normalizer_min_std, constant_input_std=d.constant_input_std, start=start,
    )  # fmt: skip
    if trainer.warm_start:
        log.scalars("warm_start", trainer.warm_start, 0)
    sched = cfg.train
    _log.info(
        "training %s on %d task(s) (%s) with %d rank(s) on %s: %s, K=%d, hidden=%s, %d iterations",
        method.name, len(tasks), ", ".join(tasks), comm.world_size, device, d.path,
        model_cfg.num_skills, list(model_cfg.hidden_sizes), sched.iterations,
    )  # fmt: skip

    best, last_val = float("inf"), float("nan")
    pending: dict[str, list[float]] = defaultdict(list)
    unvalidated = {"val_mse": None, "val_mse_unadapted": None}  # snapshots, Ctrl-C: JSON null, not NaN
    show = progress and comm.is_main
    bar = tqdm(total=sched.iterations, desc=f"train {method.name}", unit="it", disable=not show)

    def after_step(it: int, metrics: dict[str, float]) -> None:
        nonlocal best, last_val
        for k, v in metrics.items():
            pending[k].append(v)
        bar.update(1)
        if comm.is_main and sched.snapshot_interval and it % sched.snapshot_interval == 0:
            save_checkpoint(trainer.policy(), run_dir / "snapshots" / f"it{it}", method.dmil,
                            _checkpoint_meta(cfg, method, it, unvalidated))  # fmt: skip
        if it % sched.log_interval == 0 or it == sched.iterations:
            means = {k: float(np.mean(v)) for k, v in pending.items()}
            pending.clear()
            means["its_per_s"] = it / trainer.step_seconds
            log.scalars("train", means, it)
            bar.set_postfix({k: f"{means[k]:.4g}" for k in ("routed_mse", "its_per_s") if k in means})
            _log.info("it %d %s", it, " ".join(f"{k}={v:.5g}" for k, v in means.items()))
        if comm.is_main and (it % sched.eval_interval == 0 or it == sched.iterations):
            policy = trainer.policy()
            val = validate(method, policy, val_demos, sched.validation_shots, cfg.seed)
            last_val = val["val_mse"]
            log.scalars("val", val, it)
            meta = _checkpoint_meta(cfg, method, it, val)
            save_checkpoint(policy, run_dir / "last", method.dmil, meta)
            if last_val < best:
                best = last_val
                save_checkpoint(policy, run_dir / "best", method.dmil, meta)
            _log.info(
                "validation it %d: val_mse %.5g (before adaptation %.5g), best %.5g",
                it, last_val, val["val_mse_unadapted"], best,
            )  # fmt: skip

    try:
        trainer.run(sched.iterations, after_step)
    except KeyboardInterrupt:
        # Ctrl-C loses nothing learned: the current weights go to last/ (unvalidated), then stop.
        done = trainer.iterations  # completed meta-iterations (what the weights contain)
        if comm.is_main and done > 0:
            meta = {**_checkpoint_meta(cfg, method, done, unvalidated), "interrupted": True}
            save_checkpoint(trainer.policy(), run_dir / "last", method.dmil, meta)
            _log.warning("interrupted after iteration %d: weights saved to %s", done, run_dir / "last")
        raise
    finally:
        bar.close()
    step_seconds = trainer.step_seconds
    result = TrainResult(
        run_dir, sched.iterations, step_seconds, time.perf_counter() - t_start,
        sched.iterations / step_seconds, best, last_val,
    )  # fmt: skip
    if comm.is_main:
        summary = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(result).items()}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        _log.info("done: %.3f it/s, best val_mse %.5g, %s", result.iterations_per_second, best, run_dir)
    return result
