"""Paired comparison of two `dmil eval --out` files: method A's lead over method B, cell by cell.

Both evaluations must share the cells' tasks and evaluation seeds: a seed fixes the demos drawn from
the pool and the episode seeds, so seed by seed the two methods saw the same demos and started from the
same states. Per cell and seed, the score is the mean success over tasks; the lead is the mean over
seeds of A - B with the standard error of that per-seed difference, and the ratio is mean(A) / mean(B).

    python scripts/paired_difference.py results/ml45_test_dmil.json results/ml45_test_bc_scratch.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any


def cells(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    data = json.loads(path.read_text())
    return {(c["suite"], c["split"], int(c["shots"])): c for c in data.get("cells", [data])}


def paired(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if a["tasks"] != b["tasks"]:
        raise SystemExit(f"different tasks: {a['tasks']} vs {b['tasks']}")
    shared = [s for s in a["seeds"] if s in b["seeds"]]
    if not shared:
        raise SystemExit("no evaluation seed in common: nothing is paired")

    def per_seed(c: dict[str, Any]) -> list[float]:
        index = {s: i for i, s in enumerate(c["seeds"])}
        rates = c["per_task_per_seed"]
        return [sum(rates[t][index[s]] for t in c["tasks"]) / len(c["tasks"]) for s in shared]

    sa, sb = per_seed(a), per_seed(b)
    diff = [x - y for x, y in zip(sa, sb)]
    n = len(diff)
    mean = sum(diff) / n
    se = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - 1) / n) if n > 1 else None
    ma, mb = sum(sa) / n, sum(sb) / n
    return {"seeds": shared, "a": ma, "b": mb, "lead": mean, "lead_stderr": se,
            "ratio": ma / mb if mb > 0 else None, "per_seed_a": sa, "per_seed_b": sb}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = p.parse_args()
    ca, cb = cells(args.a), cells(args.b)
    rows = {"/".join(map(str, key)) + "-shot": paired(ca[key], cb[key]) for key in ca if key in cb}
    if not rows:
        raise SystemExit("the two files share no cell (suite, split, shots)")
    if args.json:
        print(json.dumps(rows))
        return 0
    name_a, name_b = next(iter(ca.values()))["method"], next(iter(cb.values()))["method"]
    print(f"| cell | seeds | {name_a} | {name_b} | lead (paired) | ratio |")
    print("|---|---|---|---|---|---|")
    for cell, r in rows.items():
        se = f" ± {r['lead_stderr']:.3f}" if r["lead_stderr"] is not None else ""
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "n/a"
        lead = f"{r['lead']:+.3f}{se}"
        print(f"| {cell} | {len(r['seeds'])} | {r['a']:.3f} | {r['b']:.3f} | {lead} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
