"""`dmil eval`: few-shot evaluation on Meta-World (paper Table 1) and Franka Kitchen (Table 2),
baselines and ablations.

For every task of each cell: draw k demos from a held-out demo pool (collected on first use with
base seed 1000; training demos use 0), adapt the method, run --trials fresh episodes whose seeds
avoid every pool demo seed. Meta-World: success = info['success'] at any step; mean ± standard
error over the evaluation seeds (each draws its own demos and episode seeds). Kitchen: the four
unseen combinations, each with the checkpoint meta-trained without its excluded object; completed
sub-tasks (of 4), mean ± standard error over all episodes.

Examples:
  dmil eval --suite ml10 --split test --shots 3 --trials 20 --json      # the shipped ML10 checkpoint
  dmil eval --suite ml45 --split test --shots 3 --json                  # the shipped ML45 checkpoint
  dmil eval --checkpoint runs/ml10/best --suite ml10,ml10-dmil --split train,test --shots 1,3 \\
      --table table1.md --out results/ml10_test_dmil.json
  dmil eval --method bc-scratch --suite ml10 --split test                # needs no checkpoint
  dmil eval --method mil --train-config config/train_ml10.yaml           # trains MIL first if needed
  dmil eval --method expert --tasks reach-v3,door-close-v3 --trials 10   # harness sanity check
  dmil eval --seeds 100-102 ...        # seeds: a count N (0..N-1), a range, a list 0,5,7, or 0-2,9
  dmil eval --table-from results/ml10_test_dmil.json results/ml10_test_mil.json
  dmil eval --ablation k --set train.iterations=2000 --trials 20 --seeds 3
  dmil eval --ablation finetune-steps --checkpoint runs/ml10-k5
  dmil eval --env kitchen --json                                         # the shipped kitchen checkpoints
  dmil eval --env kitchen --method multitask-bc --train-missing          # trains runs/kitchen-multitask-bc/
  dmil eval --env kitchen --ablation k --ablation-values 2,4,8           # trains runs/ablation/kitchen-k*/

Nothing is written unless asked: --out FILE (result JSON), --table FILE (Markdown). Protocols:
official = 300-step episodes (the DMIL code), farama = 500 (Meta-World's own), kitchen = 500; the
output always states the protocol and horizon. Exit status: 0 ok, 2 bad arguments or no usable
checkpoint (e.g. the shipped one for the suite is absent).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmil_ros.arguments import (
    names,
    non_negative_int,
    positive_float,
    positive_int,
    positive_ints,
    seed_set,
)
from dmil_ros.envs.registry import ENV_FAMILIES, SUITES
from dmil_ros.evaluation.pool import POOL_SEED, POOL_SIZE
from dmil_ros.evaluation.protocol import PROTOCOLS
from dmil_ros.methods.registry import method_names
from dmil_ros.torch_threads import add_torch_threads_argument, check_torch_threads, use_torch_threads

if TYPE_CHECKING:
    from dmil_ros.evaluation.cells import Cell
    from dmil_ros.evaluation.pipeline import EvalSettings
    from dmil_ros.evaluation.policies import OnDemand, ResolvedPolicy

# What an option means when it is not given, per env family (and for ablations).
DEFAULTS: dict[str, dict[str, Any]] = {
    "metaworld": {"shots": [1, 3], "split": ["test"], "trials": 20, "seeds": (0, 1, 2)},
    "kitchen": {"shots": [3], "split": ["test"], "trials": 10, "seeds": (0, 1)},
}
ABLATION_DEFAULTS: dict[str, Any] = {"split": ["train", "test"], "trials": 10, "seeds": (0,)}


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
    what.add_argument("--env", choices=ENV_FAMILIES, default="metaworld",
                      help="metaworld (Table 1) or kitchen (Tables 2/5; default metaworld)")  # fmt: skip
    what.add_argument(
        "--checkpoint",
        help="checkpoint or run directory (default: the one shipped for the suite, dmil_ros/checkpoints/; "
        "kitchen: a root holding no_<object>/ runs)",
    )
    what.add_argument("--method", choices=method_names(), help="default: the checkpoint's own method")
    what.add_argument("--adapt-steps", type=non_negative_int,
                      help="override the fine-tune steps of the adaptation")  # fmt: skip
    what.add_argument("--adapt-lr", type=positive_float, help="override the fine-tune learning rate")
    what.add_argument("--adapt-lr-high", type=positive_float,
                      help="override the high level's fine-tune learning rate")  # fmt: skip
    what.add_argument("--adapt-optimizer", choices=["sgd", "adam"],
                      help="override the adaptation's optimiser (DMIL variants; sgd: official)")  # fmt: skip

    cells = p.add_argument_group("where")
    cells.add_argument(
        "--suite", type=names, default=None,
        help=f"comma list of {', '.join(SUITES)} (default ml10; kitchen: all four excluded objects, "
        "or only the combinations of the kitchen-no-<object> suites given)",
    )  # fmt: skip
    cells.add_argument(
        "--split", type=names, default=None,
        help="comma list of train,test (default test; ablations train,test); kitchen: test (the four "
        "unseen combinations) or val (other combinations with the same excluded objects, for choosing "
        "test-time settings)",
    )  # fmt: skip
    cells.add_argument("--tasks", type=names, default=[],
                       help="explicit comma list of tasks (suite 'custom')")  # fmt: skip
    cells.add_argument("--shots", type=positive_ints, default=None,
                       help="comma list of k (default 1,3; kitchen 3)")  # fmt: skip

    how = p.add_argument_group("protocol")
    how.add_argument("--protocol", choices=list(PROTOCOLS), default=None,
                     help="official = 300-step episodes, farama = 500 (default official); kitchen: kitchen "
                     "(500)")  # fmt: skip
    how.add_argument("--horizon", type=positive_int, help="cut episodes at this many steps (reported)")
    how.add_argument("--trials", type=positive_int, default=None,
                     help="episodes per task and seed (default 20; kitchen and ablations 10)")  # fmt: skip
    how.add_argument(
        "--seeds", type=seed_set, default=None,
        help="evaluation seeds: a count N (0..N-1), a range 100-102, a list 0,5,7, or 0-2,9 "
        "(default 3; kitchen 2; ablations 1)",
    )  # fmt: skip
    how.add_argument(
        "--pool",
        help="held-out demo pool HDF5 (default data/eval_pool_<env>_h<H>_seed<S>.hdf5, collected if missing)",
    )  # fmt: skip
    how.add_argument("--pool-size", type=positive_int, default=POOL_SIZE,
                     help=f"demos per task in the pool (default {POOL_SIZE})")  # fmt: skip
    how.add_argument("--pool-seed", type=int, default=POOL_SEED,
                     help=f"base seed of the pool (default {POOL_SEED})")  # fmt: skip
    how.add_argument("--workers", type=positive_int, default=1, help="processes for the episodes (default 1)")
    add_torch_threads_argument(how, "this process (adaptation, in-process episodes)")

    out = p.add_argument_group("output (nothing is written unless asked)")
    out.add_argument("--json", action="store_true", help="print the result JSON as the last stdout line")
    out.add_argument("--out", help="write the result JSON to this file")
    out.add_argument("--table", help="write the Markdown table to this file")
    out.add_argument(
        "--table-from", nargs="+", metavar="JSON", help="only render a table from earlier --out files"
    )
    out.add_argument("--no-progress", action="store_true")

    train = p.add_argument_group("training on demand (baselines without a checkpoint, ablations)")
    train.add_argument(
        "--train-config", default=None,
        help="training config (default: the suite's recipe, config/train_ml10.yaml for ML10; kitchen "
        "config/train_kitchen.yaml)",
    )  # fmt: skip
    train.add_argument("--train-missing", action="store_true",
                       help="kitchen: train missing per-object checkpoints of --method first")  # fmt: skip
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a training config value (repeatable)")  # fmt: skip
    train.add_argument(
        "--train-out", help="run directory for an on-demand baseline (default runs/eval-<method>)"
    )

    abl = p.add_argument_group("ablations")
    abl.add_argument(
        "--ablation", choices=["k", "finetune-steps"], help="K (Tables 3, 5) or fine-tune steps (Table 6)"
    )
    abl.add_argument(
        "--ablation-values", type=positive_ints,
        help="default k: 2,3,5,10 (kitchen 2,4,8); finetune-steps: 10,30,50,100,300,500",
    )  # fmt: skip
    abl.add_argument(
        "--ablation-out", default="runs/ablation", help="where ablation training runs go (reused if present)"
    )
    return p


def _yaml_problem(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(e, 'problem', None) or type(e).__name__}{where}"


def _config_defaults(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """The --config YAML as parser defaults (as strings, so argparse checks them like flags)."""
    import yaml

    from dmil_ros.core.config import ConfigError
    from dmil_ros.core.shipped import config_path

    try:
        loaded = yaml.safe_load(config_path(path).read_text())
    except ConfigError as e:
        parser.error(f"--config: {e}")
    except yaml.YAMLError as e:
        parser.error(f"--config {path}: not valid YAML ({_yaml_problem(e)})")
    except (OSError, UnicodeDecodeError) as e:
        parser.error(f"--config {path}: cannot be read ({e})")
    loaded = {} if loaded is None else loaded
    if not isinstance(loaded, dict):
        parser.error(f"--config {path}: expected a mapping of option names to values")
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    values: dict[str, Any] = {}
    for key, value in loaded.items():
        dest = str(key).replace("-", "_")
        action = actions.get(dest)
        if action is None:
            parser.error(f"--config {path}: unknown option {key!r}")
        if action.nargs == 0:  # a flag
            if not isinstance(value, bool):
                parser.error(f"--config {path}: {key} must be true or false, got {value!r}")
            values[dest] = value
            continue
        if action.dest in ("overrides", "table_from"):  # lists of strings as they are
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                parser.error(f"--config {path}: {key} must be a list of strings, got {value!r}")
            values[dest] = value
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, dict) or value is None:
            parser.error(f"--config {path}: {key} has an unusable value {value!r}")
        if action.choices is not None and value not in action.choices:
            parser.error(f"--config {path}: {key} must be one of {', '.join(map(str, action.choices))}, "
                         f"got {value!r}")  # fmt: skip
        values[dest] = str(value) if action.type is not None else value
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags over the --config YAML's values over the built-in defaults."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        parser.set_defaults(**_config_defaults(parser, args.config))
        args = parser.parse_args(argv)
    check_torch_threads(parser, args.torch_threads)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    use_torch_threads(args.torch_threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        result, table = _run(args)
    except _UsageError as e:
        print(f"dmil eval: {e}", file=sys.stderr)
        return 2
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(table)
        print(f"dmil eval: table written to {args.table}", file=sys.stderr)
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


def _run(args: argparse.Namespace) -> tuple[dict[str, Any] | None, str]:
    # Heavy imports here so that `--help` stays fast.
    from dmil_ros.core.checkpoint import CheckpointError
    from dmil_ros.core.config import ConfigError
    from dmil_ros.core.data import DemoError
    from dmil_ros.evaluation.results import ResultFileError

    try:
        if args.table_from:
            return None, table_from(args.table_from)
        return _evaluate(args)
    except (ConfigError, CheckpointError, FileNotFoundError, DemoError, ResultFileError, ValueError) as e:
        raise _UsageError(str(e)) from e


def table_from(files: Sequence[str]) -> str:
    """Re-render earlier `--out` files: Meta-World runs one row each (Table 1 layout), kitchen runs one
    column each (named by the file; a K ablation gives one column a K)."""
    from dmil_ros.evaluation.results import read_entries
    from dmil_ros.evaluation.table import render_table

    entries = [e for f in files for e in read_entries(f)]
    kinds = {c.get("score") for _, cells in entries for c in cells}
    if len(kinds) > 1:
        raise ValueError("--table-from: kitchen and Meta-World results do not share a table")
    if kinds == {"completed_subtasks"}:
        return render_table(entries, "Kitchen: completed sub-tasks (paper Table 2 layout)")
    return render_table(entries, "Few-shot success rates (paper Table 1 layout)")


def _settings(args: argparse.Namespace) -> EvalSettings:
    from dmil_ros.evaluation.pipeline import EvalSettings
    from dmil_ros.evaluation.protocol import check_protocol, default_protocol

    defaults = dict(DEFAULTS[args.env])
    if args.ablation and args.env == "metaworld":
        defaults |= ABLATION_DEFAULTS
    protocol = args.protocol or default_protocol(args.env)
    check_protocol(args.env, protocol)
    args.shots = args.shots or defaults["shots"]
    args.split = args.split or defaults["split"]
    return EvalSettings(
        env=args.env, protocol=protocol, horizon=args.horizon, trials=args.trials or defaults["trials"],
        seeds=args.seeds or defaults["seeds"], pool=args.pool, pool_size=args.pool_size,
        pool_seed=args.pool_seed, workers=args.workers, progress=not args.no_progress,
    )  # fmt: skip


def _on_demand(args: argparse.Namespace, suite: str) -> OnDemand:
    from dmil_ros.core import shipped
    from dmil_ros.evaluation.policies import OnDemand

    default = shipped.KITCHEN_RECIPE if args.env == "kitchen" else shipped.suite_recipe(suite)
    return OnDemand(args.train_config or default, tuple(args.overrides), not args.no_progress)


def _adapted(policy: ResolvedPolicy, args: argparse.Namespace) -> ResolvedPolicy:
    """--adapt-steps/--adapt-lr/--adapt-lr-high/--adapt-optimizer over the policy's own settings."""
    return policy.with_adapt(args.adapt_steps, args.adapt_lr, args.adapt_lr_high, args.adapt_optimizer)


def _kitchen_combos(args: argparse.Namespace) -> tuple:
    """The unseen (test) or validation combinations, only those of the --suite kitchen-no-<object>
    suites when given."""
    from dmil_ros.envs.kitchen_tasks import UNSEEN, validation_combos

    if args.split not in (["test"], ["val"]):
        raise ValueError(f"--env kitchen takes --split test or --split val, got {','.join(args.split)}")
    if args.tasks:
        raise ValueError("--env kitchen evaluates fixed combinations: choose them with --split and "
                         "--suite kitchen-no-<object>, not --tasks")  # fmt: skip
    if len(args.shots) != 1:
        raise ValueError("--env kitchen takes one --shots value")
    combos = UNSEEN if args.split == ["test"] else validation_combos()
    if args.suite:
        known = list(dict.fromkeys(c.suite for c in combos))
        unknown = [s for s in args.suite if s not in known]
        if unknown:
            raise ValueError(
                f"--env kitchen: unknown --suite {', '.join(unknown)}; choose from {', '.join(known)}"
            )
        combos = tuple(c for c in combos if c.suite in args.suite)
    return tuple(combos)


def _evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from dmil_ros.envs.kitchen_tasks import excluded_object
    from dmil_ros.evaluation import ablation as abl
    from dmil_ros.evaluation.cells import kitchen_cells, metaworld_cells
    from dmil_ros.evaluation.pipeline import evaluate
    from dmil_ros.evaluation.policies import kitchen_policies, resolve_policy
    from dmil_ros.evaluation.results import run_json
    from dmil_ros.evaluation.scoring import scorer_for
    from dmil_ros.evaluation.table import render_table

    settings = _settings(args)
    scorer = scorer_for(args.env)
    kitchen = args.env == "kitchen"
    if kitchen:
        combos = _kitchen_combos(args)

        def make_cells(policy_for: Callable[[str], ResolvedPolicy]) -> list[Cell]:
            return kitchen_cells(combos, args.split[0], args.shots[0], policy_for)
    else:
        suites = args.suite or ["ml10"]
        unknown = [s for s in suites if s not in SUITES]
        if unknown:
            raise ValueError(f"unknown --suite {', '.join(unknown)}; choose from {', '.join(SUITES)}")

        def make_cells(policy_for: Callable[[str], ResolvedPolicy]) -> list[Cell]:
            return metaworld_cells(suites, args.split, args.shots, policy_for, args.tasks)

    def run(policy_for: Callable[[str], ResolvedPolicy]) -> list:
        return evaluate(make_cells(lambda suite: _adapted(policy_for(suite), args)), scorer, settings)

    t0 = time.perf_counter()
    if args.ablation is not None:
        return _ablation(args, settings, run, kitchen, abl)
    if kitchen:
        training = _on_demand(args, "kitchen") if args.train_missing and args.method is not None else None
        root = args.checkpoint
        if training is not None and root is None:
            root = args.train_out or f"runs/kitchen-{args.method}"
        policies = kitchen_policies(args.method, root, combos, training)

        def policy_for(suite: str) -> ResolvedPolicy:
            return policies[excluded_object(suite)]
    else:
        cache: dict[str, ResolvedPolicy] = {}

        def policy_for(suite: str) -> ResolvedPolicy:
            if suite not in cache:
                training = _on_demand(args, suite)
                cache[suite] = resolve_policy(args.method, args.checkpoint, suite=suite, training=training,
                                              train_out=args.train_out)  # fmt: skip
            return cache[suite]

    results = run(policy_for)
    result = run_json(results, settings, time.perf_counter() - t0)
    name = result["method"]
    entries = [(name, result["cells"])]
    if not kitchen:
        return result, render_table(entries, f"Few-shot success rates of {name} (paper Table 1 layout)")
    if args.split == ["val"]:
        title = f"Kitchen validation combinations (not the reported ones), {name}"
    else:
        title = f"Kitchen unseen combinations, {name} (paper Table 2)"
    return result, render_table(entries, title)


def _ablation(args: argparse.Namespace, settings: EvalSettings, run: Callable, kitchen: bool, abl: Any):
    from dmil_ros.evaluation.policies import resolve_policy

    if kitchen and args.ablation != "k":
        raise ValueError("--env kitchen supports --ablation k only")
    values = args.ablation_values or list(abl.ABLATIONS[args.env][args.ablation])
    root = Path(args.ablation_out)
    suite = (args.suite or ["ml10"])[0]
    training = _on_demand(args, "kitchen" if kitchen else suite)
    method = args.method or "dmil"
    if args.ablation == "k":
        rows = abl.k_rows(values, method, training, root, run, kitchen)
        table = abl.k_table(rows, kitchen)
    else:
        if args.checkpoint is not None:
            base = resolve_policy(None, args.checkpoint)
        else:
            base = abl.trained_policy(root / f"k{abl.FINETUNE_K}", method, training, abl.SMALL_TRAINING,
                                      [f"model.num_skills={abl.FINETUNE_K}"])  # fmt: skip
        rows = abl.finetune_rows(values, base, run)
        table = abl.finetune_table(rows)
    result = {"ablation": args.ablation, "values": values, **settings.describe(), "rows": dict(rows)}
    return result, table


if __name__ == "__main__":
    sys.exit(main())
