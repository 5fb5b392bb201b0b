"""`dmil synthetic`: the synthetic benchmark as a command (prints JSON as its last line)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from dmil_ros.core.synthetic_experiment import SyntheticSettings, run


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="dmil synthetic",
        description="Meta-train DMIL on synthetic switching sub-policies, adapt on 1 demo of each held-out "
        "task, and report segmentation accuracy and held-out action MSE against baselines.",
    )
    p.add_argument("--seed", type=int, default=SyntheticSettings.seed)
    p.add_argument("--iterations", type=int, default=SyntheticSettings.iterations)
    p.add_argument("--json", action="store_true", help="print only the JSON result line")
    args = p.parse_args(argv)
    result = run(SyntheticSettings(seed=args.seed, iterations=args.iterations))
    if not args.json:
        print(f"segmentation accuracy (held-out, 1 demo): {result['segmentation_accuracy']:.3f}")
        print(
            f"action MSE  adapted {result['adapted_mse']:.4f}  un-adapted {result['unadapted_mse']:.4f}  "
            f"BC from scratch {result['bc_scratch_mse']:.4f}"
        )
    print(json.dumps(result))
    return 0
