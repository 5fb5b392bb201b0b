"""State message -> command message latency of policy_node through DDS on loopback.

A publisher (this process) sends the four state parts at --rate Hz, each set with a unique stamp; a
real policy_node process (trigger=state, default-size 512x4 checkpoint unless --checkpoint) answers
each with a TwistStamped carrying that stamp. Latency = command received - state publishing began,
both taken on this process's monotonic clock. `--echo` answers with bench/echo_node.py instead, which
has no policy: the rclpy + DDS floor of this machine. A cycle is missed when its command did not
arrive before the next state was due (or never).

By default both sides run SCHED_FIFO at priority 50 (`--realtime-priority`; the policy node's
`realtime_priority` parameter as config/hardware.yaml deploys it, and this process standing in for a
robot driver, which runs real-time as ros2_control does); `--realtime-priority 0` measures both on
the normal scheduler. The JSON says what each side got (`schedulers`). The last line printed is JSON:
  {"p50_ms", "p99_ms", "max_ms", "missed_cycles", "lost", "rate_hz", "duration_s", "n", ...}

    python bench/control_latency.py --duration 60

`--during-adapt` measures a kitchen policy (shipped kitchen/no_top_burner, 9-joint JointState commands)
the same way: --duration s idle, then while the node adapts (dmil/policy/adapt, in its worker process)
to --demos expert demonstrations of the four-object kitchen task written beforehand; both phases in the
same invocation. The last line is then JSON with `p99_ms_idle`, `p99_ms_during_adapt`,
`ratio_during_vs_idle` (target <= 1.2), per-phase stats and the adaptation's answer:

    python bench/control_latency.py --during-adapt --duration 30
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks

from dmil_ros.core.checkpoint import save_checkpoint
from dmil_ros.core.config import ModelConfig
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.envs.base import RobotState
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.observation import stamp_ns, state_to_msgs
from dmil_ros.ros.realtime import current_policy, normal_priority, process_threads, set_realtime_priority
from dmil_ros.ros.testing import Probe, interrupt, isolated_ros_env

# No QoS-event handlers on the measuring side's own endpoints: rclpy adds two per endpoint to every
# executor wait, and that wake-up is inside every measured latency.
_QUIET_PUB = PublisherEventCallbacks(use_default_callbacks=False)
_QUIET_SUB = SubscriptionEventCallbacks(use_default_callbacks=False)


def bench_state(k: int) -> RobotState:
    """A plausible reach-v3 state that changes every cycle (so nothing is cached)."""
    wobble = 0.01 * np.sin(0.05 * k)
    return RobotState(
        joint_names=tuple(f"right_j{i}" for i in range(7)) + ("r_close", "l_close"),
        joint_positions=np.linspace(-0.5, 0.5, 9) + wobble,
        ee_position=np.array([0.0, 0.6, 0.2]) + wobble,
        ee_orientation=np.array([0.0, 0.0, 0.0, 1.0]),
        gripper_opening=1.0,
        object_positions=np.array([[0.0, 0.7, 0.02]]),
        object_orientations=np.array([[0.0, 0.0, 0.0, 1.0]]),
        goal_position=np.array([0.1, 0.8, 0.2]),
    )


def sleep_until(deadline_ns: int) -> None:
    """Sleep most of the way, spin the last 0.3 ms (time.sleep alone jitters by ~0.1-1 ms)."""
    while True:
        left = deadline_ns - time.perf_counter_ns()
        if left <= 0:
            return
        if left > 600_000:
            time.sleep((left - 300_000) * 1e-9)


def _cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (Linux /proc): load-independent cost of the policy node."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(duration: float, rate: float, checkpoint: Path, warmup: float, echo: bool = False,
        priority: int = 0) -> dict:
    env = isolated_ros_env()
    demo_dir = tempfile.mkdtemp(prefix="dmil_bench_demos_")
    params = {"checkpoint": checkpoint, "enabled": "true", "trigger": "state", "rate": float(rate),
              "state_timeout": 1.0, "expected_joint_count": 10, "demo_dir": demo_dir, "torch_threads": 1,
              "realtime_priority": priority}
    cmd = [sys.executable, "-m", "dmil_ros.ros.policy_node", "--ros-args"]
    for name, value in params.items():
        cmd += ["-p", f"{name}:={value}"]
    if echo:  # the middleware floor: the same graph answered by a node without a policy
        cmd = [sys.executable, str(Path(__file__).with_name("echo_node.py")), "--ros-args",
               "-p", f"realtime_priority:={priority}"]
    policy = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The measuring side kept light (no parameter services, no QoS-event handlers, see _QUIET_PUB).
    probe = Probe(int(env["ROS_DOMAIN_ID"]), name="latency_bench", parameter_services=False)
    sent: dict[int, int] = {}
    received: dict[int, int] = {}
    lock = threading.Lock()

    def on_command(msg) -> None:  # runs on the probe's executor thread
        now = time.perf_counter_ns()
        with lock:
            received.setdefault(stamp_ns(msg.header.stamp), now)

    try:
        probe.node.create_subscription(itf.POLICY_TWIST.msg_type, itf.POLICY_TWIST.name, on_command,
                                       itf.POLICY_TWIST.qos, event_callbacks=_QUIET_SUB)
        pubs = [probe.node.create_publisher(spec.msg_type, spec.name, spec.qos,
                                            event_callbacks=_QUIET_PUB)
                for spec in (itf.GOAL, itf.OBJECT_POSES, itf.JOINT_STATES, itf.EE_POSE)]
        probe.wait_until(lambda: all(p.get_subscription_count() >= 1 for p in pubs)
                         and probe.node.count_publishers(itf.POLICY_TWIST.name) >= 1, 60, "policy_node")
        # The measuring side stands in for a robot driver, which runs real-time too (ros2_control).
        bench_problem = set_realtime_priority(priority)
        gc.collect()
        gc.freeze()  # as the nodes do (dmil_ros/ros/runner.py): no ~30 ms full collection while measuring
        period = int(1e9 / rate)
        total = int((warmup + duration) * rate)
        skip = int(warmup * rate)
        late_publishes = 0
        t0 = time.perf_counter_ns() + period
        cpu_start = None
        for k in range(total):
            if k == skip:
                cpu_start = _cpu_seconds(policy.pid)
            due = t0 + k * period
            sleep_until(due)
            if time.perf_counter_ns() - due > period:
                late_publishes += 1  # this process fell behind: not the policy's fault, reported apart
            now_ns = time.time_ns()  # the clock's time, as a robot driver stamps (max_clock_skew)
            stamp = Time(sec=now_ns // 1_000_000_000, nanosec=now_ns % 1_000_000_000)
            js, ee, objs, goal = state_to_msgs(bench_state(k), stamp, "world", "gripper_opening")
            start = time.perf_counter_ns()
            for pub, msg in zip(pubs, (goal, objs, js, ee), strict=True):
                pub.publish(msg)
            if k >= skip:
                sent[stamp_ns(stamp)] = start
        time.sleep(0.5)  # stragglers
        cpu_per_state = (_cpu_seconds(policy.pid) - cpu_start) / max(total - skip, 1) if cpu_start else None
        schedulers = {"node": current_policy(policy.pid), "bench": current_policy()}
    finally:
        normal_priority(*process_threads())
        probe.close()
        out = interrupt(policy, 15)
    if policy.returncode not in (0, -signal.SIGINT):
        print(out, file=sys.stderr)
    with lock:
        lat = np.array([(received[s] - t) / 1e6 for s, t in sent.items() if s in received])
    lost = len(sent) - len(lat)
    missed = lost + int((lat > 1e3 / rate).sum())
    # When (CLOCK_MONOTONIC seconds, as bench/timer_jitter.py lists its stalls) each missed cycle began.
    missed_at = sorted(t / 1e9 for s, t in sent.items() if s not in received or received[s] - t > 1e9 / rate)
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if len(lat) else None,
        "max_ms": round(float(lat.max()), 3) if len(lat) else None,
        "mean_ms": round(float(lat.mean()), 3) if len(lat) else None,
        "missed_cycles": missed,
        "lost": lost,
        "missed_times_s": [round(t, 3) for t in missed_at],
        "late_publishes": late_publishes,
        "policy_cpu_ms_per_state": round(cpu_per_state * 1e3, 3) if cpu_per_state else None,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "realtime_priority": priority,
        "schedulers": schedulers,
        "bench_realtime_problem": bench_problem,
        "rate_hz": rate,
        "duration_s": duration,
        "n": len(sent),
    }


# --- --during-adapt: the same measurement on a kitchen policy, idle and then during an adaptation ------
KITCHEN_TASK = "microwave+kettle+top_burner+light_switch"  # top_burner: unseen by kitchen/no_top_burner


def write_kitchen_demos(demo_dir: Path, task: str, count: int, max_steps: int) -> list[Path]:
    """`count` expert demonstrations of `task`, written as demo_recorder writes them (state messages and
    the operator's joint-velocity command, one stamp per step; MCAP metadata with the task)."""
    from dmil_ros.envs.kitchen_env import KitchenEnv
    from dmil_ros.ros.embodiment import KITCHEN
    from dmil_ros.ros.mcap_io import DemoWriter, task_dir

    env = KitchenEnv(task, max_episode_steps=max_steps)
    paths = []
    try:
        for i in range(count):
            obs = env.reset(seed=i)
            writer = DemoWriter(task_dir(demo_dir, task) / f"demo-20260101-000000-{i:02d}.mcap",
                                {"task": task, "env": "kitchen"})
            t0 = 1_000_000_000 * (i + 1)
            for k in range(max_steps):
                ns = t0 + k * 80_000_000  # the env's 80 ms step
                stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
                state_msgs = KITCHEN.state_to_msgs(env.robot_state(), stamp, "world")
                for spec, msg in zip(itf.STATE_TOPICS, state_msgs, strict=True):
                    writer.write("/" + spec.name, msg)
                action = env.expert_action(obs)
                command, _ = KITCHEN.action_to_command(action, stamp, "world")
                writer.write("/" + itf.TELEOP_JOINT_VELOCITY.name, command)
                result = env.step(action)
                obs = result.observation
                if result.done or result.success:
                    break
            paths.append(writer.finish())
    finally:
        env.close()
    return paths


def kitchen_bench_state(k: int) -> RobotState:
    from dmil_ros.ros.embodiment import KITCHEN_JOINTS

    q = np.zeros(len(KITCHEN_JOINTS))
    q[:7] = [0.0, -0.8, 0.0, -2.3, 0.0, 1.6, 0.8]
    q[:7] += 0.01 * np.sin(0.05 * k)
    q[7:9] = 0.04
    return RobotState(joint_names=KITCHEN_JOINTS, joint_positions=q, ee_position=np.array([-0.4, 0.1, 2.0]),
                      ee_orientation=np.array([0.0, 0.0, 0.0, 1.0]), gripper_opening=1.0,
                      object_positions=np.array([[-0.27, 0.35, 1.62]]),
                      object_orientations=np.array([[0.0, 0.0, 0.0, 1.0]]), goal_position=np.zeros(3))


def run_during_adapt(idle_s: float, rate: float, warmup: float, priority: int, adapt_steps: int,
                     adapt_threads: int, demos: int, max_steps: int, timeout_s: float) -> dict:
    """p99 of the kitchen policy's state -> command latency idle, then while it adapts (one invocation)."""
    from dmil_ros.ros.embodiment import KITCHEN

    env = isolated_ros_env()
    demo_dir = Path(tempfile.mkdtemp(prefix="dmil_bench_kitchen_demos_"))
    t = time.monotonic()
    written = write_kitchen_demos(demo_dir, KITCHEN_TASK, demos, max_steps)
    demo_seconds = time.monotonic() - t
    params = {"env": "kitchen", "task": KITCHEN_TASK, "enabled": "true", "trigger": "state",
              "rate": float(rate), "state_timeout": 1.0, "demo_dir": str(demo_dir), "torch_threads": 1,
              "realtime_priority": priority, "max_demos": demos, "adapt_steps": adapt_steps,
              "adapt_threads": adapt_threads}
    cmd = [sys.executable, "-m", "dmil_ros.ros.policy_node", "--ros-args"]
    for name, value in params.items():
        cmd += ["-p", f"{name}:={value}"]
    policy = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = Probe(int(env["ROS_DOMAIN_ID"]), name="latency_bench", parameter_services=False)
    sent: dict[int, tuple[str, int]] = {}
    received: dict[int, int] = {}
    lock = threading.Lock()
    adapt_result: dict = {}
    progress: list[str] = []

    def on_command(msg) -> None:
        now = time.perf_counter_ns()
        with lock:
            received.setdefault(stamp_ns(msg.header.stamp), now)

    try:
        probe.watch(itf.POLICY_STATUS)
        probe.node.create_subscription(itf.POLICY_JOINT_VELOCITY.msg_type, itf.POLICY_JOINT_VELOCITY.name,
                                       on_command, itf.POLICY_JOINT_VELOCITY.qos, event_callbacks=_QUIET_SUB)
        pubs = [probe.node.create_publisher(spec.msg_type, spec.name, spec.qos, event_callbacks=_QUIET_PUB)
                for spec in (itf.GOAL, itf.OBJECT_POSES, itf.JOINT_STATES, itf.EE_POSE)]
        probe.wait_until(lambda: all(p.get_subscription_count() >= 1 for p in pubs)
                         and probe.node.count_publishers(itf.POLICY_JOINT_VELOCITY.name) >= 1, 120,
                         "policy_node")
        assert probe.wait_for_service(itf.POLICY_ADAPT, 60), "dmil/policy/adapt never came up"
        bench_problem = set_realtime_priority(priority)
        gc.collect()
        gc.freeze()
        period = int(1e9 / rate)
        adapting = threading.Event()
        done = threading.Event()

        def call_adapt() -> None:
            adapting.set()
            started = time.monotonic()
            try:
                res = probe.call(itf.POLICY_ADAPT, timeout=timeout_s)
                adapt_result.update(success=res.success, message=res.message)
            except TimeoutError as e:
                adapt_result.update(success=False, message=str(e))
            adapt_result["seconds"] = round(time.monotonic() - started, 2)
            done.set()

        t0 = time.perf_counter_ns() + period
        idle_end = t0 + int((warmup + idle_s) * 1e9)
        k = 0
        while not done.is_set():
            due = t0 + k * period
            if due >= idle_end and not adapting.is_set():
                threading.Thread(target=call_adapt, daemon=True).start()
            sleep_until(due)
            if due < t0 + int(warmup * 1e9):
                phase = "warmup"
            else:
                phase = "adapt" if adapting.is_set() else "idle"
            now_ns = time.time_ns()
            stamp = Time(sec=now_ns // 1_000_000_000, nanosec=now_ns % 1_000_000_000)
            js, ee, objs, goal = KITCHEN.state_to_msgs(kitchen_bench_state(k), stamp, "world")
            start = time.perf_counter_ns()
            for pub, msg in zip(pubs, (goal, objs, js, ee), strict=True):
                pub.publish(msg)
            if phase != "warmup":
                sent[stamp_ns(stamp)] = (phase, start)
            k += 1
        time.sleep(0.5)
        progress = [m.data for m in probe.received(itf.POLICY_STATUS) if m.data.startswith("adapting")]
    finally:
        normal_priority(*process_threads())
        probe.close()
        out = interrupt(policy, 30)
    if policy.returncode not in (0, -signal.SIGINT):
        print(out, file=sys.stderr)
    stats = {}
    with lock:
        for phase in ("idle", "adapt"):
            starts = {s: t for s, (ph, t) in sent.items() if ph == phase}
            lat = np.array([(received[s] - t) / 1e6 for s, t in starts.items() if s in received])
            lost = len(starts) - len(lat)
            stats[phase] = {
                "p50_ms": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
                "p99_ms": round(float(np.percentile(lat, 99)), 3) if len(lat) else None,
                "max_ms": round(float(lat.max()), 3) if len(lat) else None,
                "missed_cycles": lost + int((lat > 1e3 / rate).sum()), "lost": lost, "n": len(starts)}
    idle, during = stats["idle"]["p99_ms"], stats["adapt"]["p99_ms"]
    return {
        "p99_ms_idle": idle,
        "p99_ms_during_adapt": during,
        "ratio_during_vs_idle": round(during / idle, 3) if idle and during else None,
        "idle": stats["idle"],
        "during_adapt": stats["adapt"],
        "adapt": {**adapt_result, "steps": adapt_steps, "threads": adapt_threads, "demos": len(written),
                  "progress_lines": len(progress), "last_progress": progress[-1] if progress else None},
        "demo_generation_s": round(demo_seconds, 1),
        "task": KITCHEN_TASK,
        "checkpoint": "shipped kitchen/no_top_burner",
        "realtime_priority": priority,
        "bench_realtime_problem": bench_problem,
        "rate_hz": rate,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (after --warmup)")
    parser.add_argument("--rate", type=float, default=200.0, help="state rate [Hz]")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not measured")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint dir (default: a fresh ModelConfig(39, 4, 3) = 512x4, 3 sub-skills)")
    parser.add_argument("--realtime-priority", type=int, default=50,
                        help="SCHED_FIFO priority of the policy node (its realtime_priority parameter, as "
                        "config/hardware.yaml deploys it) and of this measuring side; 0: normal scheduler")
    parser.add_argument("--echo", action="store_true",
                        help="answer with bench/echo_node.py (no policy): what rclpy + DDS alone cost here")
    parser.add_argument("--during-adapt", action="store_true",
                        help="kitchen policy (shipped kitchen/no_top_burner): --duration s idle, then a "
                        "kitchen adaptation on --demos expert demos while measuring; prints p99_ms_idle "
                        "and p99_ms_during_adapt")
    parser.add_argument("--adapt-steps", type=int, default=-1, help="--during-adapt: adaptation steps "
                        "(-1: the checkpoint's, 1000 for kitchen)")
    parser.add_argument("--adapt-threads", type=int, default=1,
                        help="--during-adapt: the worker's torch threads")
    parser.add_argument("--demos", type=int, default=3, help="--during-adapt: expert demos adapted on")
    parser.add_argument("--demo-steps", type=int, default=280,
                        help="--during-adapt: longest demo [steps]")
    parser.add_argument("--adapt-timeout", type=float, default=900.0,
                        help="--during-adapt: give up after [s]")
    args = parser.parse_args(argv)
    if args.during_adapt:
        result = run_during_adapt(args.duration, args.rate, args.warmup, args.realtime_priority,
                                  args.adapt_steps, args.adapt_threads, args.demos, args.demo_steps,
                                  args.adapt_timeout)
        print(f"kitchen policy at {args.rate:g} Hz: p99 idle {result['p99_ms_idle']} ms, during adaptation "
              f"{result['p99_ms_during_adapt']} ms (x{result['ratio_during_vs_idle']}); "
              f"adaptation {result['adapt'].get('seconds')} s: {result['adapt'].get('message')}")
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="dmil_bench_ckpt_") as tmp:
        default = Hierarchy.initialize(ModelConfig(39, 4, 3))  # the real size: 512x4, 3 sub-skills
        checkpoint = args.checkpoint or save_checkpoint(default, Path(tmp))
        result = run(args.duration, args.rate, checkpoint, args.warmup, args.echo, args.realtime_priority)
    result["checkpoint"] = str(args.checkpoint) if args.checkpoint else "random ModelConfig(39, 4, 3), 512x4"
    if args.echo:
        result["checkpoint"] = None
        result["answered_by"] = "bench/echo_node.py (no policy)"
    result["cpu_count"] = os.cpu_count()
    print(f"{result['n']} states at {args.rate:g} Hz: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
          f"max {result['max_ms']} ms, missed {result['missed_cycles']} (lost {result['lost']})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
