"""Meta-iteration throughput: dmil_ros's meta-gradient vs a per-task autograd loop (official style).

All compute the same meta-gradients (test/test_meta_gradient.py checks equality; the loop is
the tests' oracle, test/reference_loop.py) on the same data,
at the same sizes; timing covers the meta-gradient computation of one meta-batch. Both backends of
`dmil.meta_gradients` are timed: `vmap` (tasks vectorised, every sub-skill on every state, masked)
and `routed` (per-task loop, each state through its routed sub-skill only). `speedup_vs_loop` is for
the backend `auto` picks on this device. Prints JSON; the last line is for the default sizes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from dmil_ros.core.config import ModelConfig, make_dmil_config
from dmil_ros.core.data import MetaBatch
from dmil_ros.core.dmil import meta_gradients, resolve_backend
from dmil_ros.core.networks import init_params

# The per-task loop is the tests' oracle (test/reference_loop.py), not part of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
from reference_loop import ReferenceDMIL  # noqa: E402


def _batch(tasks: int, windows: int, length: int, obs_dim: int, act_dim: int) -> MetaBatch:
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(tasks, 4, windows * length, obs_dim, generator=g)
    act = torch.tanh(torch.randn(tasks, 4, windows * length, act_dim, generator=g))
    next_same = torch.ones(windows * length - 1)
    next_same[length - 1 :: length] = 0
    return MetaBatch(obs, act, next_same)


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def measure(
    hidden: tuple[int, ...], skills: int, tasks: int, windows: int, length: int, repeats: int
) -> dict:
    model = ModelConfig(39, 4, skills, hidden)
    cfg = make_dmil_config(
        "dmil",
        inner_lr_high=0.1,
        inner_lr_low=0.01,
        tasks_per_batch=tasks,
        windows_per_batch=windows,
        window_length=length,
    )
    params = init_params(model, seed=0)
    batch = _batch(tasks, windows, length, 39, 4)
    ref = ReferenceDMIL(model, params)
    vmapped = statistics.median(_time(lambda: meta_gradients(params, batch, cfg, backend="vmap"), repeats))
    routed = statistics.median(_time(lambda: meta_gradients(params, batch, cfg, backend="routed"), repeats))
    loop = statistics.median(_time(lambda: ref.meta_gradients(batch, cfg), repeats))
    auto = resolve_backend("auto", batch.obs.device, hidden[0])
    ours = routed if auto == "routed" else vmapped
    return {
        "hidden_sizes": list(hidden),
        "num_skills": skills,
        "tasks_per_batch": tasks,
        "states_per_batch": windows * length,
        "backend": auto,
        "vmap_s": vmapped,
        "routed_s": routed,
        "loop_s": loop,
        "speedup_vs_loop": loop / ours,
        "vmap_speedup_vs_loop": loop / vmapped,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paper = measure((512,) * 4, 3, 10, 16, 16, max(2, args.repeats // 2))
    print(json.dumps({"config": "paper sizes (512x4, K=3, 10 tasks, 16 windows x 16 states)", **paper}))
    default = measure((256,) * 3, 3, 10, 8, 16, args.repeats)
    print(
        json.dumps(
            {
                "config": "default training sizes (256x3, K=3, 10 tasks, 8 windows x 16 states)",
                **default,
                "threads": args.threads,
                "paper_sizes_speedup": paper["speedup_vs_loop"],
            }
        )
    )


if __name__ == "__main__":
    main()
