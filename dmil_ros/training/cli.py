"""`dmil train`: meta-train DMIL (or a baseline) on Meta-World demos from a YAML config.

Examples:
  dmil train --config config/train_ml10.yaml --out runs/ml10-k3
  dmil train --config config/train_ml10.yaml --set train.iterations=50 --set model.num_skills=5
  dmil train --config config/train_ml10.yaml --method mil --out runs/ml10-mil
  torchrun --nproc_per_node=2 -m dmil_ros.training.cli --config config/train_ml10.yaml --out runs/ddp

Demos are read from `data.path` and collected with the scripted expert first when the file is
missing or holds fewer than `data.demos_per_task` demos per task (resumable; N(0, data.noise_std)
executed-action noise, horizon `data.horizon`). The run directory gets config.yaml (resolved),
train.log, metrics.jsonl, tensorboard/, last/ and best/ checkpoints and summary.json.

Under torchrun every rank takes a shard of each meta-batch's tasks and the meta-gradients are
averaged (all_reduce, gloo on CPU / nccl on GPU) before the one Adam step, so all ranks stay
identical; rank 0 collects demos, validates and writes the run directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from dmil_ros.core.checkpoint import CheckpointError
from dmil_ros.core.data import DemoError
from dmil_ros.methods.distributed import Comm
from dmil_ros.methods.registry import method_names
from dmil_ros.training.config import ConfigError, dump_yaml, load_config

DEFAULT_CONFIG = "config/train_ml10.yaml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dmil train",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML run config (default {DEFAULT_CONFIG})")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by dotted key, e.g. dmil.outer_lr=1e-3, model.hidden_sizes=[64,64] "
        "(repeatable; values are parsed as YAML)",
    )  # fmt: skip
    p.add_argument("--out", default=None, help="run directory (default runs/<config>-<method>-seed<seed>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty run directory")
    p.add_argument("--method", choices=method_names(), help="shortcut for --set method=NAME")
    p.add_argument("--iterations", type=int, help="shortcut for --set train.iterations=N")
    p.add_argument(
        "--demos-per-task", type=int,
        help="shortcut for --set data.demos_per_task=N: demos per training task to collect/use "
        "(the last data.validation_demos of each task are held out for validation)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, help="shortcut for --set seed=N")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    for key, value in (("method", args.method), ("train.iterations", args.iterations),
                       ("data.demos_per_task", args.demos_per_task), ("seed", args.seed)):  # fmt: skip
        if value is not None:
            overrides.append(f"{key}={value}")
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        print(f"dmil train: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    out = Path(args.out or f"runs/{Path(args.config).stem}-{cfg.method}-seed{cfg.seed}")

    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    comm = Comm.from_env(use_cuda)
    logging.basicConfig(
        level=logging.INFO if comm.is_main else logging.WARNING,
        format=f"%(levelname)s [rank {comm.rank}] %(name)s: %(message)s"
        if comm.distributed
        else "%(levelname)s %(name)s: %(message)s",
    )
    if comm.distributed and cfg.torch_threads == 0:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // comm.world_size))  # ranks share the cores

    from dmil_ros.training.runner import train  # heavy imports after argument parsing (fast --help)

    try:
        result = train(cfg, out, comm, progress=not args.no_progress, overwrite=args.overwrite)
    except (ConfigError, DemoError, FileExistsError, CheckpointError) as e:
        print(f"dmil train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dmil train: interrupted; the latest weights are in the run's last/", file=sys.stderr)
        return 130
    finally:
        comm.close()
    if comm.is_main:
        print(
            f"run {result.run_dir}: {result.iterations} iterations, {result.iterations_per_second:.3f} it/s, "
            f"best val_mse {result.best_val_mse:.5g} (last {result.last_val_mse:.5g})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
