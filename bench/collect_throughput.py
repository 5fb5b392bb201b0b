"""Raw env stepping vs demonstration collection throughput, one core.

Collection runs `collect_demos(workers=1)` in this process: expert policy, noise, recording, HDF5
writes and bookkeeping (envs are pre-built, so construction is not timed). The raw baseline then
replays exactly the same episodes on the bare metaworld env: same reset seeds and `env.reset()`,
the same `env.step` calls with the executed actions of every attempt, failed ones included (the
bench notes each attempt's executed actions as collection runs; the replay is bit-identical, so
both sides simulate the same contacts). `ratio` = collection steps/s over raw steps/s; the target
is >= 0.9.

The cores are shared, so both sides are timed in CPU seconds of this (single-threaded) process,
collection and replay alternate in short rounds per task, and the reported ratio is the median over
rounds (wall-clock numbers are printed too). Before each timed part the task's env runs one untimed
warm-up episode: whichever part ran first on a cold env (its MuJoCo data out of cache after another
task's rounds) lost up to a third of its speed.

A third timed part replays the same episodes with the scripted expert called on every observation
between the physics steps, as collection calls it: the bare "env + expert" loop any collector needs.
`ratio_vs_env_and_expert` = collection over that loop is what dmil_ros's machinery (noise, recording,
seeding, HDF5) costs; `ratio_ceiling` = that loop over raw stepping is the best `ratio` a collector
could reach with these experts. The expert costs about twice as much between physics steps as in a
tight loop over recorded observations (e.g. 42 vs 23 us per step on button-press-v3: caches), so
`expert_us_per_step` is measured in situ. Failed attempts are replayed with their own actions (random
ones would give a different, cheaper trajectory) after an untimed warm-up. The last printed line is
JSON.

    .venv/bin/python bench/collect_throughput.py --tasks reach-v3 button-press-v3 door-close-v3 --n 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from dmil_ros.data import collect as collect_mod
from dmil_ros.data.collect import CollectConfig, CollectReport, collect_demos
from dmil_ros.envs.registry import cached_env


def _clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


# Every attempt's (task, seed, executed actions), noted while collect_demos runs (see _noting_attempts).
_ATTEMPTS: list[tuple[str, int, np.ndarray]] = []


def _noting_attempts(run_episode):
    def run(env, seed, noise, config):
        ep = run_episode(env, seed, noise, config)
        _ATTEMPTS.append((env.task_name, seed, ep.executed_actions))  # one append per episode
        return ep
    return run


def warm_up(env) -> None:
    """One untimed short episode, so neither timed part starts on a cold env."""
    env.seed(0)
    env.reset()
    for a in np.zeros((20, 4), np.float32):
        env.step(a)


def replay(
    report: CollectReport, config: CollectConfig, with_expert: bool = False
) -> tuple[int, float, float, float]:
    """(steps, cpu s, wall s, cpu s inside env.step only) replaying the collected attempts, on the bare
    env, optionally calling the expert on every observation between the steps (its action unused)."""
    steps, step_cpu = 0, 0.0
    jobs = []
    for task in report.tasks:
        env = cached_env(config.env, task, config.max_episode_steps)
        jobs += [(env, seed, list(actions)) for t, seed, actions in _ATTEMPTS if t == task]
        warm_up(env.raw_env)
    cpu0, wall0 = _clocks()
    for env, seed, actions in jobs:
        raw = env.raw_env  # the same, already built metaworld env
        raw.seed(seed)
        obs, _ = raw.reset()
        s0 = time.process_time()
        if with_expert:
            for a in actions:
                env.expert_action(obs)
                obs = raw.step(a)[0]
        else:
            for a in actions:
                raw.step(a)
        step_cpu += time.process_time() - s0
        steps += len(actions)
    cpu1, wall1 = _clocks()
    return steps, cpu1 - cpu0, wall1 - wall0, step_cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["reach-v3", "button-press-v3", "door-close-v3"])
    p.add_argument("--n", type=int, default=10, help="demos per task per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--horizon", type=int, default=500)
    p.add_argument("--noise", type=float, default=0.1)
    a = p.parse_args()
    collect_mod.run_episode = _noting_attempts(collect_mod.run_episode)
    for task in a.tasks:  # build (and cache) the envs outside the timed region
        cached_env("metaworld", task, a.horizon)
    totals = dict(steps=0, c_cpu=0.0, c_wall=0.0, r_cpu=0.0, r_wall=0.0, step_cpu=0.0, x_cpu=0.0)
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for task in a.tasks:
                # A fresh base seed per round, so every round collects new episodes.
                cfg = CollectConfig(max_episode_steps=a.horizon, noise_std=a.noise, base_seed=1000 + r)
                path = Path(tmp) / f"{task}-{r}.hdf5"
                _ATTEMPTS.clear()
                warm_up(cached_env(cfg.env, task, cfg.max_episode_steps).raw_env)
                cpu0, wall0 = _clocks()
                report = collect_demos(path, [task], a.n, cfg, workers=1, progress=False)
                cpu1, wall1 = _clocks()
                steps, r_cpu, r_wall, step_cpu = replay(report, cfg)
                x_steps, x_cpu, _, _ = replay(report, cfg, with_expert=True)
                assert steps == x_steps == report.env_steps
                ratios.append((cpu1 - cpu0) and r_cpu / (cpu1 - cpu0))
                for k, v in dict(
                    steps=steps,
                    c_cpu=cpu1 - cpu0,
                    c_wall=wall1 - wall0,
                    r_cpu=r_cpu,
                    r_wall=r_wall,
                    step_cpu=step_cpu,
                    x_cpu=x_cpu,
                ).items():
                    totals[k] += v
                print(
                    f"round {r} {task}: {steps} steps, success {report.tasks[task].success_rate:.2f};"
                    f" collect {steps / (cpu1 - cpu0):.0f}/s cpu, raw {steps / r_cpu:.0f}/s cpu,"
                    f" env+expert {steps / x_cpu:.0f}/s cpu, ratio {ratios[-1]:.3f},"
                    f" expert {1e6 * (x_cpu - r_cpu) / steps:.0f} us/step in situ"
                )
    n = totals["steps"]
    result = {
        "raw_steps_per_s": round(n / totals["r_cpu"], 1),
        "collect_steps_per_s_per_worker": round(n / totals["c_cpu"], 1),
        "ratio": round(float(np.median(ratios)), 3),
        "ratio_pooled": round(totals["r_cpu"] / totals["c_cpu"], 3),
        "raw_env_step_only_steps_per_s": round(n / totals["step_cpu"], 1),
        "env_and_expert_steps_per_s": round(n / totals["x_cpu"], 1),
        "expert_us_per_step": round(1e6 * (totals["x_cpu"] - totals["r_cpu"]) / n, 1),
        "ratio_vs_env_and_expert": round(totals["x_cpu"] / totals["c_cpu"], 3),
        "ratio_ceiling": round(totals["r_cpu"] / totals["x_cpu"], 3),
        "wall_raw_steps_per_s": round(n / totals["r_wall"], 1),
        "wall_collect_steps_per_s": round(n / totals["c_wall"], 1),
        "timing": "cpu seconds, one process; ratio = median over task rounds",
        "tasks": a.tasks,
        "episodes_steps": n,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
