"""One-shot adaptation latency: 1 demo of 150 states, K=3, 4x512 hidden, default AdaptConfig.

Prints JSON; the last line holds `p95_ms` (target <= 150 ms on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dmil_ros.core.adaptation import adapt
from dmil_ros.core.config import AdaptConfig, ModelConfig
from dmil_ros.core.data import Demo
from dmil_ros.core.hierarchy import Hierarchy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--states", type=int, default=150)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=AdaptConfig().steps)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    h = Hierarchy.initialize(ModelConfig(39, 4, 3, (512,) * 4), seed=0)
    rng = np.random.default_rng(0)
    demo = Demo(
        rng.normal(size=(args.states, 39)).astype(np.float32),
        rng.uniform(-1, 1, size=(args.states, 4)).astype(np.float32),
        "bench",
    )
    cfg = AdaptConfig(steps=args.steps)
    adapt(h, [demo], cfg)  # warm-up
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        adapt(h, [demo], cfg)
        times.append((time.perf_counter() - t0) * 1e3)
    t = np.asarray(times)
    print(
        json.dumps(
            {
                "p50_ms": float(np.percentile(t, 50)),
                "p95_ms": float(np.percentile(t, 95)),
                "max_ms": float(t.max()),
                "runs": args.runs,
                "states": args.states,
                "steps": args.steps,
                "num_skills": 3,
                "hidden_sizes": [512] * 4,
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
