"""`dmil synthetic`: the synthetic benchmark as a command (prints JSON as its last line)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from dmil_ros.arguments import positive_int
from dmil_ros.evaluation.synthetic import SyntheticSettings, run
from dmil_ros.torch_threads import add_torch_threads_argument, check_torch_threads, use_torch_threads


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="dmil synthetic",
        description="Meta-train DMIL on synthetic switching sub-policies, adapt on 1 demo of each held-out "
        "task, and report segmentation accuracy and held-out action MSE against baselines.",
    )
    p.add_argument("--seed", type=int, default=SyntheticSettings.seed)
    p.add_argument("--iterations", type=positive_int, default=SyntheticSettings.iterations)
    p.add_argument(
        "--draws",
        type=positive_int,
        default=1,
        help="adapt on this many independent demo draws per held-out task and report the "
        "spread under 'over_draws' (the headline numbers stay the first draw's)",
    )
    add_torch_threads_argument(p, "meta-training and adaptation")
    p.add_argument("--json", action="store_true", help="print only the JSON result line")
    args = p.parse_args(argv)
    check_torch_threads(p, args.torch_threads)
    use_torch_threads(args.torch_threads)
    result = run(SyntheticSettings(seed=args.seed, iterations=args.iterations, extra_draws=args.draws - 1))
    if not args.json:
        print(f"segmentation accuracy (held-out, 1 demo): {result['segmentation_accuracy']:.3f}")
        print(
            f"action MSE  adapted {result['adapted_mse']:.4f}  un-adapted {result['unadapted_mse']:.4f}  "
            f"BC from scratch {result['bc_scratch_mse']:.4f}"
        )
        if "over_draws" in result:
            d = result["over_draws"]
            print(
                f"over {d['draws']} demo draws: segmentation mean {d['segmentation_accuracy_mean']:.3f}, "
                f"min {d['segmentation_accuracy_min']:.3f}"
            )
    print(json.dumps(result))
    return 0
