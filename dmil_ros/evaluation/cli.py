"""`dmil eval`: few-shot evaluation on Meta-World (paper Table 1), baselines and ablations.

For every task of each suite split: draw k demos from a held-out demo pool (collected on first use
with base seed 1000; training demos use 0), adapt the method, run --trials fresh episodes whose
seeds avoid every pool demo seed, success = info['success'] at any step. Mean ± standard error are
over --seeds evaluation seeds (each draws its own demos and episode seeds).

Examples:
  dmil eval --suite ml10 --split test --shots 3 --trials 20 --json      # the shipped checkpoint
  dmil eval --checkpoint runs/ml10/best --suite ml10,ml10-dmil --split train,test --shots 1,3 \\
      --table results/table1.md --out results/dmil.json
  dmil eval --method bc-scratch --suite ml10 --split test                # needs no checkpoint
  dmil eval --method mil --train-config config/train_ml10.yaml           # trains MIL first if needed
  dmil eval --method expert --tasks reach-v3,door-close-v3 --trials 10   # harness sanity check
  dmil eval --table-from results/dmil.json results/mil.json --table results/table1.md
  dmil eval --ablation k --set train.iterations=2000 --trials 20 --seeds 3
  dmil eval --ablation finetune-steps --checkpoint runs/ml10-k5/best

Franka Kitchen (paper Tables 2 and 5): the four unseen combinations, each with the checkpoint
meta-trained without its excluded object; scores are completed sub-tasks (of 4):
  dmil eval --env kitchen --json                                         # the shipped kitchen checkpoints
  dmil eval --env kitchen --method bc-scratch
  dmil eval --env kitchen --method multitask-bc --train-missing          # trains runs/kitchen-multitask-bc/
  dmil eval --env kitchen --ablation k --ablation-values 2,4,8           # trains runs/ablation/kitchen-k*/

Protocols: official = 300-step episodes (the DMIL code), farama = 500 (Meta-World's own); the
output always states the protocol and horizon. Exit status: 0 ok, 2 bad arguments or no usable
checkpoint (e.g. the shipped dmil_ros/checkpoints/metaworld_ml10 is absent).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmil_ros.envs.registry import SUITES
from dmil_ros.evaluation.pool import POOL_SEED, POOL_SIZE
from dmil_ros.evaluation.protocol import PROTOCOLS
from dmil_ros.methods.registry import method_names
from dmil_ros.torch_threads import add_torch_threads_argument, check_torch_threads, use_torch_threads

if TYPE_CHECKING:
    from dmil_ros.envs.kitchen_tasks import UnseenCombo
    from dmil_ros.evaluation.policies import ResolvedPolicy


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dmil eval",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        help="YAML file of defaults for these options (keys as option names, e.g. shots: [1, 3]); "
        "flags given on the command line win (e.g. config/eval_ml10.yaml)",
    )
    what = p.add_argument_group("what to evaluate")
    what.add_argument("--env", choices=["metaworld", "kitchen"], default="metaworld",
                      help="metaworld (Table 1) or kitchen (Tables 2/5; default metaworld)")  # fmt: skip
    what.add_argument(
        "--checkpoint",
        help="checkpoint or run directory (default: the shipped dmil_ros/checkpoints/metaworld_ml10)",
    )
    what.add_argument("--method", choices=method_names(), help="default: the checkpoint's own method")
    what.add_argument("--adapt-steps", type=int, help="override the fine-tune steps of the adaptation")
    what.add_argument("--adapt-lr", type=float, help="override the fine-tune learning rate")
    what.add_argument("--adapt-lr-high", type=float, help="override the high level's fine-tune learning rate")
    what.add_argument("--adapt-optimizer", choices=["sgd", "adam"],
                      help="override the adaptation's optimiser (DMIL variants; sgd: official)")  # fmt: skip

    cells = p.add_argument_group("where")
    cells.add_argument(
        "--suite", type=_names, default=None,
        help=f"comma list of {', '.join(SUITES)} (default ml10; kitchen: all four excluded objects, "
        "or only the combinations of the kitchen-no-<object> suites given)",
    )  # fmt: skip
    cells.add_argument(
        "--split",
        type=_names,
        default=None,
        help="comma list of train,test (default test; ablations train,test); kitchen: test (the four "
        "unseen combinations) or val (other combinations with the same excluded objects, for choosing "
        "test-time settings)",
    )
    cells.add_argument(
        "--tasks", type=_names, default=[], help="explicit comma list of tasks (suite 'custom')"
    )
    cells.add_argument("--shots", type=_ints, default=None, help="comma list of k (default 1,3; kitchen 3)")

    how = p.add_argument_group("protocol")
    how.add_argument("--protocol", choices=list(PROTOCOLS), default="official",
                     help="official = 300-step episodes, farama = 500 (default official)")  # fmt: skip
    how.add_argument("--horizon", type=int, help="override the protocol's horizon (reported)")
    how.add_argument(
        "--trials", type=int, default=None, help="episodes per task and seed (default 20; ablations 10)"
    )
    how.add_argument(
        "--seeds", type=int, default=None, help="evaluation seeds 0..N-1 (default 3; ablations 1)"
    )
    how.add_argument(
        "--pool",
        help="held-out demo pool HDF5 (default data/eval_pool_<env>_h<H>_seed<S>.hdf5, collected if missing)",
    )
    how.add_argument(
        "--pool-size", type=int, default=POOL_SIZE, help=f"demos per task in the pool (default {POOL_SIZE})"
    )
    how.add_argument(
        "--pool-seed", type=int, default=POOL_SEED, help=f"base seed of the pool (default {POOL_SEED})"
    )
    how.add_argument("--workers", type=int, default=1, help="processes for the episodes (default 1)")
    add_torch_threads_argument(how, "this process (adaptation, in-process episodes)")

    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the result JSON as the last stdout line")
    out.add_argument("--out", help="also write the result JSON to this file")
    out.add_argument("--table", help="Markdown table file (default results/eval-<method>-<protocol>.md)")
    out.add_argument(
        "--table-from", nargs="+", metavar="JSON", help="only render a table from earlier --out files"
    )
    out.add_argument("--no-progress", action="store_true")

    train = p.add_argument_group("training on demand (baselines without a checkpoint, ablations)")
    train.add_argument(
        "--train-config",
        default=None,
        help="training config (default config/train_ml10.yaml; kitchen config/train_kitchen.yaml)",
    )
    train.add_argument("--train-missing", action="store_true",
                       help="kitchen: train missing per-object checkpoints of --method first")  # fmt: skip
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a training config value (repeatable)")  # fmt: skip
    train.add_argument(
        "--train-out", help="run directory for an on-demand baseline (default runs/eval-<method>)"
    )

    abl = p.add_argument_group("ablations")
    abl.add_argument(
        "--ablation", choices=["k", "finetune-steps"], help="K (Table 3) or fine-tune steps (Table 6)"
    )
    abl.add_argument(
        "--ablation-values", type=_ints, help="default k: 2,3,5,10; finetune-steps: 10,30,50,100,300,500"
    )
    abl.add_argument(
        "--ablation-out", default="runs/ablation", help="where ablation training runs go (reused if present)"
    )
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags over the --config YAML's values over the built-in defaults."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        import yaml

        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, dict):
            parser.error(f"{args.config}: expected a mapping of option names to values")
        known = {a.dest for a in parser._actions}
        values = {k.replace("-", "_"): v for k, v in loaded.items()}
        unknown = sorted(set(values) - known - {"config"})
        if unknown:
            parser.error(f"{args.config}: unknown option(s) {unknown}")
        for key in ("suite", "split", "tasks", "shots", "ablation_values"):  # YAML lists -> "a,b" strings
            if isinstance(values.get(key), list):
                values[key] = ",".join(str(v) for v in values[key])
        parser.set_defaults(**values)
        args = parser.parse_args(argv)
    check_torch_threads(parser, args.torch_threads)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    use_torch_threads(args.torch_threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        result, table, table_path = _run(args)
    except _UsageError as e:
        print(f"dmil eval: {e}", file=sys.stderr)
        return 2
    if table_path is not None:
        table_path.parent.mkdir(parents=True, exist_ok=True)
        table_path.write_text(table)
        print(f"dmil eval: table written to {table_path}", file=sys.stderr)
    if args.out and result is not None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    if args.json and result is not None:
        print(json.dumps(result))
    else:
        print(table, end="")
    return 0


class _UsageError(Exception):
    pass


def _run(args: argparse.Namespace) -> tuple[dict[str, Any] | None, str, Path | None]:
    # Heavy imports here so that `--help` stays fast.
    from dmil_ros.core.checkpoint import CheckpointError
    from dmil_ros.core.data import DemoError
    from dmil_ros.training.config import ConfigError

    if args.table_from:
        return None, _table_from(args.table_from), _path(args.table)
    try:
        return _evaluate(args)
    except (ConfigError, CheckpointError, FileNotFoundError, DemoError, ValueError) as e:
        raise _UsageError(str(e)) from e


def _table_from(files: Sequence[str]) -> str:
    """Re-render earlier `--out` files: Meta-World cells (Table 1 layout) or kitchen results (one column
    a file, named by it; a kitchen K ablation gives one column a K). Unusable files: _UsageError."""
    from dmil_ros.evaluation import kitchen as kt
    from dmil_ros.evaluation.table import render_table

    rows: list[tuple[str, list[dict[str, Any]]]] = []
    columns: list[tuple[str, dict[str, Any]]] = []
    for f in files:
        try:
            data = json.loads(Path(f).read_text())
            if data.get("env") == "kitchen":
                runs = data["rows"] if "rows" in data else {Path(f).stem: data}
                for name, res in runs.items():
                    _require(res, ("combos", "trials", "seeds", "shots", "horizon"))
                    columns.append((str(name), res))
            else:
                cells = data.get("cells", [data])
                _require(cells[0], ("method", "suite", "split", "shots", "mean_success"))
                rows.append((str(cells[0]["method"]), cells))
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            what = f"missing {e}" if isinstance(e, KeyError) else str(e)
            raise _UsageError(f"--table-from {f}: not a `dmil eval --out` file ({what})") from e
    if rows and columns:
        raise _UsageError("--table-from: kitchen and Meta-World results do not share a table")
    if columns:
        return kt.render_kitchen_table(columns, "Kitchen: completed sub-tasks (paper Table 2 layout)")
    return render_table(rows, "Few-shot success rates (paper Table 1 layout)")


def _require(d: Mapping[str, Any], keys: Sequence[str]) -> None:
    for k in keys:
        if k not in d:
            raise KeyError(k)


def _path(p: str | None) -> Path | None:
    return Path(p) if p else None


def _evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], str, Path]:
    from dmil_ros.evaluation.ablation import ABLATIONS, finetune_ablation, k_ablation
    from dmil_ros.evaluation.harness import EvalSettings, evaluate, make_cells
    from dmil_ros.evaluation.policies import resolve_policy
    from dmil_ros.evaluation.table import render_table

    if args.env == "kitchen":
        return _evaluate_kitchen(args)
    args.train_config = args.train_config or "config/train_ml10.yaml"
    args.shots = args.shots or [1, 3]
    ablating = args.ablation is not None
    trials = args.trials if args.trials is not None else (10 if ablating else 20)
    n_seeds = args.seeds if args.seeds is not None else (1 if ablating else 3)
    if trials < 1 or n_seeds < 1 or any(k < 1 for k in args.shots):
        raise ValueError("--trials, --seeds and --shots must be >= 1")
    settings = EvalSettings(
        protocol=args.protocol, horizon=args.horizon, trials=trials, seeds=tuple(range(n_seeds)),
        pool=args.pool, pool_size=args.pool_size, pool_seed=args.pool_seed, workers=args.workers,
        progress=not args.no_progress,
    )  # fmt: skip
    splits = args.split or (["train", "test"] if ablating else ["test"])
    cells = make_cells(args.suite or ["ml10"], splits, args.shots, args.tasks)
    common = {
        "protocol": args.protocol,
        "horizon": settings.resolved_horizon,
        "trials": trials,
        "seeds": list(settings.seeds),
    }

    if ablating:
        values = args.ablation_values or list(ABLATIONS[args.ablation])
        root = Path(args.ablation_out)
        if args.ablation == "k":
            rows, table = k_ablation(values, args.train_config, args.overrides, root, cells, settings)
        else:
            rows, table = finetune_ablation(
                values, args.checkpoint, args.train_config, args.overrides, root, cells, settings
            )
        result = {"ablation": args.ablation, "values": values, **common, "rows": dict(rows)}
        return result, table, Path(args.table or f"results/ablation-{args.ablation}-{args.protocol}.md")

    resolved = resolve_policy(
        args.method, args.checkpoint, train_config=args.train_config, train_overrides=args.overrides,
        train_out=args.train_out, progress=not args.no_progress,
    )  # fmt: skip
    resolved = _with_adapt_overrides(resolved, args)
    results = [r.to_json() for r in evaluate(resolved, cells, settings)]
    name = resolved.method.name
    table = render_table([(name, results)], f"Few-shot success rates of {name} (paper Table 1 layout)")
    if len(results) == 1:
        result = {**results[0], "cells": results}
    else:
        key = [f"{c['suite']}/{c['split']}/{c['shots']}-shot" for c in results]
        result = {
            "method": name, "checkpoint": resolved.checkpoint, **common,
            "mean_success": {k: c["mean_success"] for k, c in zip(key, results, strict=False)},
            "stderr": {k: c["stderr"] for k, c in zip(key, results, strict=False)},
            "per_task": {k: c["per_task"] for k, c in zip(key, results, strict=False)},
            "cells": results,
        }  # fmt: skip
    return result, table, Path(args.table or f"results/eval-{name}-{args.protocol}.md")


def _with_adapt_overrides(resolved: ResolvedPolicy, args: argparse.Namespace) -> ResolvedPolicy:
    """--adapt-steps/--adapt-lr/--adapt-lr-high over the checkpoint's own adaptation settings."""
    from dmil_ros.evaluation.policies import ResolvedPolicy

    given = (args.adapt_steps, args.adapt_lr, args.adapt_lr_high, args.adapt_optimizer)
    if all(v is None for v in given):
        return resolved
    method = resolved.method.with_adapt(*given)
    return ResolvedPolicy(method, resolved.policy, resolved.checkpoint)


def _kitchen_combos(combos: Sequence[UnseenCombo], suites: Sequence[str] | None) -> tuple[UnseenCombo, ...]:
    """`combos` of the given kitchen-no-<object> suites (all when none are given); others: ValueError."""
    if not suites:
        return tuple(combos)
    known = list(dict.fromkeys(c.suite for c in combos))
    unknown = [s for s in suites if s not in known]
    if unknown:
        raise ValueError(
            f"--env kitchen: unknown --suite {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return tuple(c for c in combos if c.suite in suites)


def _evaluate_kitchen(args: argparse.Namespace) -> tuple[dict[str, Any], str, Path]:
    from dmil_ros.envs.kitchen_tasks import validation_combos
    from dmil_ros.evaluation import kitchen as kt

    if args.ablation == "finetune-steps":
        raise ValueError("--env kitchen supports --ablation k only")
    shots = args.shots or [3]
    if len(shots) != 1:
        raise ValueError("--env kitchen takes one --shots value")
    split = args.split or ["test"]
    if split not in (["test"], ["val"]):
        raise ValueError(f"--env kitchen takes --split test or --split val, got {','.join(split)}")
    if args.tasks:
        raise ValueError("--env kitchen evaluates fixed combinations: choose them with --split and "
                         "--suite kitchen-no-<object>, not --tasks")  # fmt: skip
    combos = _kitchen_combos(kt.UNSEEN if split == ["test"] else validation_combos(), args.suite)
    settings = kt.KitchenSettings(
        shots=shots[0], trials=args.trials or 10, seeds=tuple(range(args.seeds or 2)),
        horizon=args.horizon or kt.HORIZON, pool=args.pool, pool_size=args.pool_size,
        pool_seed=args.pool_seed, workers=args.workers, progress=not args.no_progress,
        combos=combos,
    )  # fmt: skip
    if min(settings.trials, len(settings.seeds), settings.shots, settings.horizon) < 1:
        raise ValueError("--trials, --seeds, --shots and --horizon must be >= 1")
    config = args.train_config or kt.TRAIN_CONFIG
    if args.ablation == "k":
        values = args.ablation_values or [2, 4, 8]
        columns = []
        for k in values:
            root = Path(args.ablation_out) / f"kitchen-k{k}"
            policies = kt.train_kitchen_policies(
                args.method or "dmil", config, [*args.overrides, f"model.num_skills={k}"], root,
                combos, progress=settings.progress,
            )  # fmt: skip
            policies = {o: _with_adapt_overrides(p, args) for o, p in policies.items()}
            columns.append((f"K={k}", kt.evaluate_kitchen(policies, settings)))
        table = kt.render_kitchen_table(columns, "Kitchen: completed sub-tasks vs. K (paper Table 5)")
        result = {"ablation": "k", "values": values, "env": "kitchen",
                  "rows": {name: res for name, res in columns}}  # fmt: skip
        return result, table, Path(args.table or "results/ablation-k-kitchen.md")
    if args.train_missing and args.method is not None and args.checkpoint is None:
        root = Path(args.train_out or f"runs/kitchen-{args.method}")
        policies = kt.train_kitchen_policies(args.method, config, args.overrides, root, combos,
                                             progress=settings.progress)  # fmt: skip
    else:
        policies = kt.resolve_kitchen_policies(args.method, args.checkpoint, combos)
    policies = {o: _with_adapt_overrides(p, args) for o, p in policies.items()}
    result = {"split": split[0], **kt.evaluate_kitchen(policies, settings)}
    name = result["method"]
    if split == ["val"]:
        title, suffix = f"Kitchen validation combinations (not the reported ones), {name}", "-val"
    else:
        title, suffix = f"Kitchen unseen combinations, {name} (paper Table 2)", ""
    table = kt.render_kitchen_table([(name, result)], title)
    return result, table, Path(args.table or f"results/eval-{name}-kitchen{suffix}.md")


if __name__ == "__main__":
    sys.exit(main())
