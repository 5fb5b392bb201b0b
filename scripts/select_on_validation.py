"""Choose a checkpoint or an adaptation budget by closed-loop success on meta-validation tasks.

Meta-validation tasks (dmil_ros.envs.registry.VALIDATION_TASKS) are never trained on by the runs they
rank and never reported as results (results/adaptation_budget_validation.md, results/ml45_validation.md).
Every candidate is evaluated with `dmil eval` (official protocol, 1 and 3 shots, --trials x --seeds);
the criterion, fixed before any run, is the mean of 1-shot and 3-shot success.

    # which checkpoint (cheapest first: ties within --tie go to the earlier one)
    python scripts/select_on_validation.py checkpoints --suite ml45 --out results/ml45_val_stage1 \\
        runs/ml45sel-w256/snapshots/it2000 runs/ml45sel-w256/snapshots/it4000 ...
    # which adaptation budget for a method (a grid of 8; ties within 0.01 to fewer steps, then lower lr)
    python scripts/select_on_validation.py budget --suite ml45 --method bc-scratch \\
        --out results/ml45_val_bc_scratch

Writes <out>.json (every candidate's numbers, per task, and the choice) and <out>.md; keeps each
evaluation's own `dmil eval --out` file under <out>/ ; prints the choice as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from dmil_ros.envs.registry import VALIDATION_TASKS

# Adaptation grids, 8 settings each: (steps, lr). DMIL/MIL: SGD on the sub-skills (high level at its
# checkpoint's lr_high); the BC baselines: Adam.
GRIDS = {
    "dmil": ((30, 100, 300, 500), (0.01, 0.05)),
    "mil": ((30, 100, 300, 500), (0.01, 0.05)),
    "bc-scratch": ((100, 300, 500, 1000), (3e-4, 1e-3)),
    "multitask-bc": ((30, 100, 300, 500), (1e-4, 1e-3)),
}


def evaluate(tasks: tuple[str, ...], out: Path, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """One `dmil eval` on the validation tasks (reused if `out` exists: an interrupted selection resumes)."""
    if not out.is_file():
        cmd = [sys.executable, "-m", "dmil_ros.cli", "eval", "--tasks", ",".join(tasks),
               "--shots", "1,3", "--trials", str(args.trials), "--seeds", str(args.seeds),
               "--workers", str(args.workers), "--no-progress", "--out", str(out),
               "--table", str(out.with_suffix(".md")), *extra]
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    m = result["mean_success"]
    one, three = m["custom/test/1-shot"], m["custom/test/3-shot"]
    return {"1-shot": one, "3-shot": three, "criterion": (one + three) / 2, "stderr": result["stderr"],
            "per_task": result["per_task"], "file": str(out)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("mode", choices=["checkpoints", "budget"])
    p.add_argument("candidates", nargs="*", help="checkpoints mode: checkpoint directories, cheapest first")
    p.add_argument("--suite", choices=sorted(VALIDATION_TASKS), default="ml10")
    p.add_argument("--method", choices=sorted(GRIDS), default="dmil", help="budget mode: whose grid")
    p.add_argument("--checkpoint", default=None, help="budget mode: the checkpoint (bc-scratch: none)")
    p.add_argument("--tie", type=float, default=None,
                   help="criterion margin counted as a tie (default: checkpoints 0.02, budget 0.01)")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="<out>.json, <out>.md and the folder <out>/")
    a = p.parse_intermixed_args()
    tasks = VALIDATION_TASKS[a.suite]
    rows: list[dict[str, Any]] = []
    if a.mode == "checkpoints":
        if not a.candidates:
            p.error("checkpoints mode needs at least one checkpoint directory")
        tie = 0.02 if a.tie is None else a.tie
        for i, ckpt in enumerate(a.candidates):
            out = a.out / f"candidate{i}.json"
            row = {"checkpoint": ckpt, **evaluate(tasks, out, a, ["--checkpoint", ckpt])}
            rows.append(row)
            print(f"{ckpt}: 1-shot {row['1-shot']:.3f}, 3-shot {row['3-shot']:.3f}", flush=True)
        best = max(r["criterion"] for r in rows)
        chosen = next(r for r in rows if r["criterion"] >= best - tie)  # the cheapest of the tied
        choice: dict[str, Any] = {"checkpoint": chosen["checkpoint"]}
        keys = ["checkpoint"]
    else:
        if a.candidates:
            p.error("budget mode takes no positional arguments (use --checkpoint)")
        tie = 0.01 if a.tie is None else a.tie
        steps_grid, lr_grid = GRIDS[a.method]
        base = ["--method", a.method] + (["--checkpoint", a.checkpoint] if a.checkpoint else [])
        for steps, lr in itertools.product(steps_grid, lr_grid):
            out = a.out / f"steps{steps}_lr{lr:g}.json"
            budget = ["--adapt-steps", str(steps), "--adapt-lr", str(lr)]
            row = {"steps": steps, "lr": lr, **evaluate(tasks, out, a, [*base, *budget])}
            rows.append(row)
            print(f"steps {steps} lr {lr:g}: 1-shot {row['1-shot']:.3f}, 3-shot {row['3-shot']:.3f}",
                  flush=True)
        best = max(r["criterion"] for r in rows)
        tied = [r for r in rows if r["criterion"] >= best - tie]
        chosen = min(tied, key=lambda r: (r["steps"], r["lr"]))
        choice = {"steps": chosen["steps"], "lr": chosen["lr"]}
        keys = ["steps", "lr"]
    summary = {"mode": a.mode, "suite": a.suite, "validation_tasks": list(tasks), "method": a.method,
               "checkpoint": a.checkpoint, "protocol": "official (300 steps)", "trials": a.trials,
               "seeds": a.seeds, "tie": tie, "chosen": choice, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    what = "checkpoint" if a.mode == "checkpoints" else f"adaptation budget of {a.method}"
    lines = [f"### {a.suite.upper()} validation: {what}", "",
             f"Tasks: {', '.join(tasks)}; official protocol, {a.trials} trials x {a.seeds} seeds; "
             f"criterion = mean of 1- and 3-shot success, ties ({tie:g}) to the cheaper candidate.", "",
             f"| {' | '.join(keys)} | 1-shot | 3-shot | criterion |", "|---" * (len(keys) + 3) + "|"]
    for r in rows:
        mark = " **(chosen)**" if r is chosen else ""
        cells = " | ".join(f"{r[k]:g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
        lines.append(f"| {cells} | {r['1-shot']:.3f} | {r['3-shot']:.3f} | {r['criterion']:.3f}{mark} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps(choice))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
