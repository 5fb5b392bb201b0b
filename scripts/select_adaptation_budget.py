"""Choose the few-shot adaptation budget (steps, sub-skill lr) without looking at the meta-test tasks.

Meta-validation tasks: five Meta-World v3 tasks that are in neither ML10 split, each the nearest
sibling of an ML10 training task (as the ML10 test tasks are): window-close (window-open),
button-press (button-press-topdown), reach-wall (reach), push-back (push), pick-place-wall
(pick-place). Nothing is trained on them; their held-out demos and closed-loop success only rank
the adaptation settings. Each setting of the grid is evaluated with `dmil eval` (official protocol,
1 and 3 shots, 10 trials x 3 seeds); the criterion, fixed before any run, is the mean of the 1-shot
and 3-shot validation success, ties (within 0.01) going to fewer steps. The high level's lr stays
at its meta-training inner-step value (the checkpoint's lr_high).

    .venv/bin/python scripts/select_adaptation_budget.py --out results/adaptation_budget_validation

Writes <out>.json (every setting's numbers and the choice) and <out>.md; prints the choice as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

VALIDATION_TASKS = ("window-close-v3", "button-press-v3", "reach-wall-v3", "push-back-v3",
                    "pick-place-wall-v3")
STEPS = (30, 100, 300, 500)
LRS = (0.01, 0.05)


def evaluate(checkpoint: str | None, steps: int, lr: float, trials: int, seeds: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        cmd = [sys.executable, "-m", "dmil_ros.cli", "eval", "--tasks", ",".join(VALIDATION_TASKS),
               "--shots", "1,3", "--trials", str(trials), "--seeds", str(seeds), "--workers", str(workers),
               "--adapt-steps", str(steps), "--adapt-lr", str(lr), "--no-progress", "--out", str(out),
               "--table", str(Path(tmp) / "table.md")]
        if checkpoint:
            cmd += ["--checkpoint", checkpoint]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="default: the shipped metaworld_ml10")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="writes <out>.json and <out>.md")
    a = p.parse_args()
    rows = []
    for steps, lr in itertools.product(STEPS, LRS):
        result = evaluate(a.checkpoint, steps, lr, a.trials, a.seeds, a.workers)
        m = result["mean_success"]
        one, three = m["custom/test/1-shot"], m["custom/test/3-shot"]
        rows.append({"steps": steps, "lr": lr, "1-shot": one, "3-shot": three, "criterion": (one + three) / 2,
                     "per_task": result["per_task"], "stderr": result["stderr"]})
        print(f"steps {steps:4d} lr {lr:g}: 1-shot {one:.3f}, 3-shot {three:.3f}", flush=True)
    best = max(r["criterion"] for r in rows)
    near_best = [r for r in rows if r["criterion"] >= best - 0.01]
    chosen = min(near_best, key=lambda r: (r["steps"], -r["criterion"]))
    summary = {"validation_tasks": list(VALIDATION_TASKS), "checkpoint": a.checkpoint or "shipped",
               "protocol": "official (300 steps)", "trials": a.trials, "seeds": a.seeds,
               "chosen": {"steps": chosen["steps"], "lr": chosen["lr"]}, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["### Adaptation budget on the meta-validation tasks (not ML10)", "",
             f"Tasks: {', '.join(VALIDATION_TASKS)}; official protocol, {a.trials} trials x {a.seeds} seeds; "
             "criterion = mean of 1- and 3-shot success, ties (0.01) to fewer steps.", "",
             "| steps | lr | 1-shot | 3-shot | criterion |", "|---|---|---|---|---|"]
    for r in rows:
        mark = " **(chosen)**" if r is chosen else ""
        lines.append(f"| {r['steps']} | {r['lr']:g} | {r['1-shot']:.3f} | {r['3-shot']:.3f} | "
                     f"{r['criterion']:.3f}{mark} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps(summary["chosen"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
