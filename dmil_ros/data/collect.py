"""Scripted-expert demonstration collection, parallel and resumable, into the HDF5 format.

Protocol (official DMIL style): the expert acts on every step; Gaussian noise N(0, noise_std) is
added to the *executed* action (all 4 dims, then clipped to [-1, 1]) so demos visit off-nominal
states, but the *recorded* action is the clean expert action for the recorded observation. An
episode runs until the first step with info['success'] > 0, then `steps_after_success` more steps
(recorded too, so the policy also learns to hold the goal), and stops there or at the horizon,
whichever comes first. Only episodes that succeeded are kept; a failed attempt is retried with the
next attempt seed, up to `max_attempts` per demo. The expert success rate per task is
successes / attempts.

Seeds are deterministic per (base_seed, task, demo_index, attempt), independent of worker count and
order, so a resumed or parallel run produces the same demos as a serial one. Work is split into
chunks of one task each and run in spawn-started worker processes (each keeps its envs); only the
parent writes the file, flushing after every demo, so an interrupted run resumes by skipping the
(task, demo_index) pairs already complete.

    python -m dmil_ros.data.collect --out demos.hdf5 --suite ml10-dmil --split all --n 10 --workers 2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from dmil_ros.data.hdf5_dataset import DemoWriter, RecordedDemo, read_env_args
from dmil_ros.data.workers import WorkerPool
from dmil_ros.envs.base import ManipulationEnv
from dmil_ros.envs.registry import cached_env, suite_tasks

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectConfig:
    env: str = "metaworld"
    max_episode_steps: int = 500  # 500 = Farama protocol, 300 = official DMIL
    noise_std: float = 0.1  # executed-action noise; 0 = clean rollouts
    steps_after_success: int = 10
    base_seed: int = 0
    max_attempts: int = 10  # per demo; a demo whose attempts all fail is reported missing


@dataclass
class TaskStats:
    attempts: int = 0
    successes: int = 0
    env_steps: int = 0
    busy_s: float = 0.0  # worker-side seconds spent on this task
    written: int = 0
    skipped: int = 0  # already in the file
    missing: list[int] = field(default_factory=list)  # demo indices with no successful attempt
    episodes: list[tuple[int, int, bool]] = field(default_factory=list)  # (seed, steps, success)

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts else float("nan")


@dataclass
class CollectReport:
    tasks: dict[str, TaskStats]
    wall_s: float
    workers: int

    @property
    def env_steps(self) -> int:
        return sum(s.env_steps for s in self.tasks.values())

    @property
    def steps_per_s_per_worker(self) -> float:
        """Env steps per second of worker time (excludes process start-up and the parent's writes)."""
        busy = sum(s.busy_s for s in self.tasks.values())
        return self.env_steps / busy if busy > 0 else float("nan")

    def summary(self) -> str:
        lines = [f"{'task':32s} {'success':>8s} {'attempts':>8s} {'written':>7s} {'skipped':>7s} missing"]
        for task, s in self.tasks.items():
            lines.append(
                f"{task:32s} {s.success_rate:8.2f} {s.attempts:8d} {s.written:7d} {s.skipped:7d} {s.missing}"
            )
        lines.append(f"{self.env_steps} env steps in {self.wall_s:.1f} s with {self.workers} worker(s)")
        return "\n".join(lines)


def episode_seeds(
    base_seed: int, task: str, demo_index: int, attempt: int
) -> tuple[int, np.random.Generator]:
    """(env reset seed, noise generator) for one attempt; stable across runs, platforms and workers."""
    ss = np.random.SeedSequence([base_seed, zlib.crc32(task.encode()), demo_index, attempt])
    env_ss, noise_ss = ss.spawn(2)
    return int(env_ss.generate_state(1)[0]), np.random.default_rng(noise_ss)


@dataclass(frozen=True)
class Episode:
    observations: np.ndarray  # (T, obs_dim) float32
    actions: np.ndarray  # (T, act_dim) float32 clean expert
    executed_actions: np.ndarray  # (T, act_dim) float32
    rewards: np.ndarray  # (T,) float32
    success_step: int  # -1 if never solved


def run_episode(
    env: ManipulationEnv, seed: int, noise: np.random.Generator, config: CollectConfig
) -> Episode:
    """One expert rollout with executed-action noise and the stopping rule in the module docstring."""
    horizon = env.max_episode_steps
    obs_buf = np.empty((horizon, env.obs_dim), np.float32)
    act_buf = np.empty((horizon, env.action_dim), np.float32)
    rew_buf = np.empty(horizon, np.float32)
    # Pre-drawn for the whole horizon: one RNG call instead of one per step.
    executed = np.empty((horizon, env.action_dim), np.float32)
    if config.noise_std > 0:
        executed[:] = noise.normal(0.0, config.noise_std, size=executed.shape)
    else:
        executed[:] = 0.0
    obs = env.reset(seed)
    success_step = -1
    stop = horizon
    t = 0
    while t < stop:
        action = env.expert_action(obs)
        obs_buf[t] = obs
        act_buf[t] = action
        ex = executed[t]
        ex += action
        ex.clip(-1.0, 1.0, out=ex)
        result = env.step(ex)
        rew_buf[t] = result.reward
        t += 1
        if success_step < 0 and result.success:
            success_step = t - 1
            stop = min(horizon, t + config.steps_after_success)
        obs = result.observation
    return Episode(
        obs_buf[:t].copy(), act_buf[:t].copy(), executed[:t].copy(), rew_buf[:t].copy(), success_step
    )


@dataclass(frozen=True)
class _Chunk:
    task: str
    indices: tuple[int, ...]
    config: CollectConfig


@dataclass
class _ChunkResult:
    task: str
    demos: list[RecordedDemo]
    stats: TaskStats


def _run_chunk(chunk: _Chunk) -> _ChunkResult:
    t0 = time.perf_counter()
    cfg = chunk.config
    env = cached_env(cfg.env, chunk.task, cfg.max_episode_steps)
    stats = TaskStats()
    demos = []
    for index in chunk.indices:
        for attempt in range(cfg.max_attempts):
            seed, noise = episode_seeds(cfg.base_seed, chunk.task, index, attempt)
            ep = run_episode(env, seed, noise, cfg)
            ok = ep.success_step >= 0
            stats.attempts += 1
            stats.successes += ok
            stats.env_steps += len(ep.actions)
            stats.episodes.append((seed, len(ep.actions), ok))
            if ok:
                demos.append(
                    RecordedDemo(
                        observations=ep.observations,
                        actions=ep.actions,
                        task=chunk.task,
                        seed=seed,
                        demo_index=index,
                        success_step=ep.success_step,
                        rewards=ep.rewards,
                        executed_actions=ep.executed_actions,
                    )
                )
                break
        else:
            stats.missing.append(index)
    stats.busy_s = time.perf_counter() - t0
    return _ChunkResult(chunk.task, demos, stats)


def _merge(into: TaskStats, new: TaskStats) -> None:
    into.attempts += new.attempts
    into.successes += new.successes
    into.env_steps += new.env_steps
    into.busy_s += new.busy_s
    into.missing.extend(new.missing)
    into.episodes.extend(new.episodes)


def demo_settings(config: CollectConfig) -> dict[str, Any]:
    """What decides which demos a collection produces; recorded in the file, checked on reuse."""
    settings: dict[str, Any] = {
        "env_name": config.env,
        "horizon": config.max_episode_steps,
        "noise_std": config.noise_std,
        "steps_after_success": config.steps_after_success,
        "base_seed": config.base_seed,
    }
    if config.env == "kitchen":  # Meta-World's experts come with metaworld_version
        from dmil_ros.envs.kitchen_expert import EXPERT_VERSION

        settings["kitchen_expert_version"] = EXPERT_VERSION
    return settings


def settings_clash(path: str | Path, config: CollectConfig) -> dict[str, tuple[Any, Any]]:
    """demo_settings that differ between the file at `path` and `config`: (recorded, wanted)."""
    recorded = read_env_args(path)
    return {k: (recorded.get(k), v) for k, v in demo_settings(config).items() if recorded.get(k) != v}


def _env_args(config: CollectConfig, tasks: Sequence[str], suite: str | None) -> dict:
    env = cached_env(config.env, tasks[0], config.max_episode_steps)
    args = {
        **demo_settings(config),
        "suite": suite,
        "tasks": list(tasks),
        "obs_dim": env.obs_dim,
        "action_dim": env.action_dim,
        "control_dt": env.control_dt,
    }
    sim_package = {"metaworld": "metaworld", "kitchen": "gymnasium_robotics"}.get(config.env)
    if sim_package is not None:
        args[f"{sim_package}_version"] = metadata.version(sim_package)
        args["mujoco_version"] = metadata.version("mujoco")
    return args


def _chunks(todo: dict[str, list[int]], config: CollectConfig, chunk_size: int) -> Iterator[_Chunk]:
    for task, indices in todo.items():  # task-major, so each worker mostly stays on one env
        for i in range(0, len(indices), chunk_size):
            yield _Chunk(task, tuple(indices[i : i + chunk_size]), config)


def collect_demos(
    path: str | Path,
    tasks: Sequence[str],
    n_demos: int,
    config: CollectConfig | None = None,
    *,
    workers: int = 1,
    chunk_size: int = 5,
    suite: str | None = None,
    progress: bool = True,
) -> CollectReport:
    """Fill `path` with demos 0..n_demos-1 of every task (resuming what is there); workers<=1 runs
    in this process."""
    if not tasks:
        raise ValueError("no tasks given")
    config = config or CollectConfig()
    t0 = time.perf_counter()
    stats = {task: TaskStats() for task in tasks}
    with DemoWriter(path, _env_args(config, tasks, suite)) as writer:
        done = writer.completed()
        todo = {}
        for task in tasks:
            missing = [i for i in range(n_demos) if (task, i) not in done]
            stats[task].skipped = n_demos - len(missing)
            if missing:
                todo[task] = missing
        bar = tqdm(total=sum(map(len, todo.values())), desc="demos", unit="demo", disable=not progress)

        def consume(result: _ChunkResult) -> None:
            s = stats[result.task]
            _merge(s, result.stats)
            for demo in result.demos:
                writer.append(demo)
                s.written += 1
            bar.update(len(result.demos) + len(result.stats.missing))
            bar.set_postfix_str(f"{result.task} success {s.success_rate:.2f}")

        try:
            with WorkerPool(workers) as pool:
                # A few chunks in flight at a time, so results (and file writes) arrive steadily.
                pool.run(((_run_chunk, c) for c in _chunks(todo, config, chunk_size)), consume, 2 * workers)
        finally:
            bar.close()
    report = CollectReport(stats, time.perf_counter() - t0, max(1, workers))
    for task, s in stats.items():
        if s.attempts:
            _log.info("%s: expert success rate %.2f (%d/%d)", task, s.success_rate, s.successes, s.attempts)
        if s.missing:
            _log.warning("%s: no successful attempt for demo(s) %s", task, s.missing)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    from dmil_ros.arguments import non_negative_float, non_negative_int, positive_int
    from dmil_ros.envs.registry import ENV_FAMILIES, available_tasks

    p = argparse.ArgumentParser(prog="dmil collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="HDF5 file (resumed if it exists)")
    p.add_argument("--env", choices=ENV_FAMILIES, default="metaworld")
    p.add_argument("--tasks", nargs="*", default=None, help="task names (or use --suite)")
    p.add_argument("--suite", default=None, help="ml10 | ml10-dmil | ml45 | kitchen-no-<object>")
    p.add_argument("--split", default="all", help="train | test | all")
    p.add_argument("--n", type=positive_int, default=10, help="demos per task")
    p.add_argument("--horizon", type=positive_int, default=500)
    p.add_argument("--noise", type=non_negative_float, default=0.1)
    p.add_argument("--after-success", type=non_negative_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-attempts", type=positive_int, default=10)
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument("--chunk-size", type=positive_int, default=5)
    a = p.parse_args(argv)
    try:
        tasks = list(a.tasks or []) + (suite_tasks(a.suite, a.split) if a.suite else [])
    except ValueError as e:
        p.error(str(e))
    if not tasks:
        p.error("give --tasks or --suite")
    if a.env == "metaworld":
        unknown = sorted(set(tasks) - set(available_tasks("metaworld")))
        if unknown:
            p.error(f"unknown Meta-World task(s) {', '.join(unknown)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = CollectConfig(
        env=a.env,
        max_episode_steps=a.horizon,
        noise_std=a.noise,
        steps_after_success=a.after_success,
        base_seed=a.seed,
        max_attempts=a.max_attempts,
    )
    try:
        report = collect_demos(
            a.out, tasks, a.n, config, workers=a.workers, chunk_size=a.chunk_size, suite=a.suite
        )
    except (ValueError, OSError) as e:  # an unknown kitchen sub-task, a file of other settings, ...
        print(f"dmil collect: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    rates = {t: round(s.success_rate, 3) for t, s in report.tasks.items() if s.attempts}
    print(json.dumps({"config": asdict(config), "expert_success_rate": rates}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
