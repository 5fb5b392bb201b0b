"""Success rate of the scripted Franka Kitchen expert, per sub-task and for a few 4-sub-task chains.

    OMP_NUM_THREADS=1 python bench/kitchen_expert.py --seeds 5
Prints one line per episode, then JSON on the last line:
{"per_subtask": {slug: {"success": rate, "steps": mean steps to success}}, "per_chain": {...},
 "steps_per_s": env+expert steps per second}.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dmil_ros.envs.kitchen_env import SUBTASKS, KitchenEnv

CHAINS = (
    "microwave+kettle+light_switch+slide_cabinet",
    "microwave+kettle+bottom_burner+light_switch",
    "kettle+bottom_burner+top_burner+slide_cabinet",
    "top_burner+hinge_cabinet+microwave+light_switch",
)


def run(task: str, seeds: list[int], horizon: int, noise: float) -> tuple[dict, int]:
    env = KitchenEnv(task, max_episode_steps=horizon)
    rng = np.random.default_rng(0)
    wins, steps_to_success, n_completed, total = 0, [], [], 0
    for seed in seeds:
        obs = env.reset(seed)
        first = None
        for t in range(horizon):
            a = env.expert_action(obs)
            if noise > 0:
                a = np.clip(a + rng.normal(0.0, noise, a.shape), -1, 1)
            r = env.step(a)
            obs = r.observation
            total += 1
            if r.success and first is None:
                first = t + 1
        wins += first is not None
        n_completed.append(r.info["n_completed"])
        if first is not None:
            steps_to_success.append(first)
        print(f"{task} seed={seed} completed={r.info['completed']} first_success_step={first}", flush=True)
    env.close()
    out = {
        "success": wins / len(seeds),
        "mean_completed": float(np.mean(n_completed)),
        "steps_to_success": float(np.mean(steps_to_success)) if steps_to_success else None,
        "max_steps_to_success": int(max(steps_to_success)) if steps_to_success else None,
    }
    return out, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--horizon", type=int, default=200, help="single sub-task horizon")
    ap.add_argument("--chain-horizon", type=int, default=500)
    ap.add_argument("--noise", type=float, default=0.0, help="N(0, sigma) added to executed actions")
    ap.add_argument("--subtasks", default=",".join(SUBTASKS))
    ap.add_argument("--chains", default=",".join(CHAINS))
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    t0, steps = time.perf_counter(), 0
    per_subtask, per_chain = {}, {}
    for s in filter(None, args.subtasks.split(",")):
        per_subtask[s], n = run(s, seeds, args.horizon, args.noise)
        steps += n
    for c in filter(None, args.chains.split(",")):
        per_chain[c], n = run(c, seeds, args.chain_horizon, args.noise)
        steps += n
    rate = steps / (time.perf_counter() - t0)
    print(json.dumps({"per_subtask": per_subtask, "per_chain": per_chain, "steps_per_s": round(rate, 1)}))


if __name__ == "__main__":
    main()
