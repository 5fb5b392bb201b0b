"""The full user path through the hardware graph against the robot stand-in, compared with the sim path.

Hardware path, per task (and per --latency value): `dmil bringup standin` (the cell: MoveIt Servo,
driver, perception, gripper, on the task's Meta-World scene; the scripted expert as operator) and
`dmil bringup hardware` (policy_node + demo_recorder, config/hardware.yaml: timer trigger at --rate, 25 Hz,
0.25 m/s, SCHED_FIFO) on one isolated ROS domain, no `ros2 launch`. The operator records --demos
demonstrations through the cell's command topics (/servo_node/delta_twist_cmds, /gripper/command,
which the recorder records as the operator's), /dmil/adapt adapts the policy, which then drives
--episodes episodes. Sim path: `dmil bringup sim` (lock-step), the same tasks, demo count, seeds and
checkpoint. Success is Meta-World's own criterion in both (on the stand-in's physics state there).

Episode i of a task uses seed --seed + i in both paths (episode 0 is the start-up scene; demos are
episodes 1..k, trials k+1..k+n). Horizon: --horizon-steps env steps in the sim (the DMIL protocol's
300); on the stand-in the same number of 12.5 ms control steps stretched by the speed ratio
0.8 / action_speed (an action of 1.0 is 0.8 m/s in the sim, 0.25 m/s on the robot: config/hardware.yaml,
config/standin.yaml): 12 s, the time the slowed-down motions of a sim episode take.

Safety, counted at the arm: every command the stand-in's Servo executed is logged with its stamp.
- after disable: a twist stamped after dmil/policy/enable(false) returned that moved the arm;
- stale state: once per task the stand-in stops publishing its state mid-episode
  (standin/state_dropout); a twist stamped later than policy state_timeout + Servo's
  incoming_command_timeout after the last state that moved the arm.
`commands_after_disable` is the sum of both over every episode; it must be 0.

    python bench/hardware_loop.py --json                       # 3 tasks x 10 episodes, latency 50 ms
    python bench/hardware_loop.py --latency 0,0.05,0.1,0.2 --out results/hardware_loop.json
The last line printed is JSON: per_task, ratio_hardware_vs_sim, commands_after_disable, latency_curve, ...
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from std_srvs.srv import SetBool

from dmil_ros.core.shipped import suite_checkpoint_dir
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.graph import config_file, launch_default
from dmil_ros.ros.testing import Probe, isolated_ros_env

TASKS = ("door-close-v3", "drawer-open-v3", "lever-pull-v3")
SIM_CONTROL_DT = 0.0125  # s per env step (Meta-World)
SIM_SPEED = 0.8  # m/s per axis at action 1.0 in the sim


def _config(kind: str, node: str, name: str) -> Any:
    return yaml.safe_load(config_file(kind).read_text())[node]["ros__parameters"][name]


# m/s per axis at action 1.0 on the robot: the policy's (the operator's in config/standin.yaml must agree)
ROBOT_SPEED = _config("hardware", "policy_node", "action_speed")
HOLD_GAIN = _config("hardware", "policy_node", "orientation_hold_gain")  # [1/s], 0: off
if _config("standin", "scripted_teleop", "action_speed") != ROBOT_SPEED:
    raise SystemExit("action_speed differs: config/standin.yaml's operator, config/hardware.yaml's policy")
POLICY_STATE_TIMEOUT = _config("hardware", "policy_node", "state_timeout")
SERVO_TIMEOUT = _config("standin", "robot_standin", "incoming_command_timeout")
CONTROL_RATE = float(launch_default("hardware", "rate"))
# What the hardware graph needs to know about the stand-in's cell (a real cell passes its own).
CELL_ARGS = ("--frame-id", "base", "--gripper-joint", "right_gripper_l_finger_joint",
             "--gripper-scale", "20.0", "--gripper-topic", "/" + itf.GRIPPER_COMMAND.name,
             "--teleop-twist-topic", "/" + itf.SERVO_TWIST.name,
             "--teleop-gripper-topic", "/" + itf.GRIPPER_COMMAND.name)


def horizon_s(steps: int) -> float:
    """The stand-in's episode horizon: `steps` sim control steps, stretched by the speed ratio."""
    return steps * SIM_CONTROL_DT * SIM_SPEED / ROBOT_SPEED


class Graphs:
    """`dmil bringup <kind>` subprocesses on one isolated domain, a probe, and their logs."""

    def __init__(self, workdir: Path, commands: dict[str, list[str]]) -> None:
        env = isolated_ros_env()
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Any] = {}
        for name, args in commands.items():
            self.logs[name] = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in close()
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "dmil_ros.ros.bringup", *args],
                                                env=env, stdout=self.logs[name], stderr=subprocess.STDOUT)
        self.probe = Probe(int(env["ROS_DOMAIN_ID"]), name="hardware_loop_bench")

    def log(self, tail: int = 3000) -> str:
        out = []
        for name in self.procs:
            self.logs[name].flush()
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            out.append(f"--- {name} ---\n{text[-tail:]}")
        return "\n".join(out)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} graph exited with {proc.returncode}:\n{self.log()}")

    def wait_services(self, specs: tuple[itf.ServiceSpec, ...], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for spec in specs:
            while not self.probe.wait_for_service(spec, 1.0):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{spec.name} never came up:\n{self.log()}")

    def close(self) -> None:
        self.probe.close()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self.logs.values():
            f.close()


def enable(probe: Probe, spec: itf.ServiceSpec, on: bool) -> tuple[int, int]:
    """SetBool `spec`; (clock ns before the request, after the response)."""
    before = time.time_ns()
    res = probe.call(spec, SetBool.Request(data=on))
    if not res.success:
        raise RuntimeError(f"{spec.name}: {res.message}")
    return before, time.time_ns()


def adapt(probe: Probe, log: Any) -> str:
    """/dmil/adapt, retried while the recorder has not discovered the policy's service yet."""
    deadline = time.monotonic() + 120.0
    while True:
        res = probe.call(itf.ADAPT, timeout=600.0)
        if res.success:
            return res.message
        if "not available" not in res.message or time.monotonic() > deadline:
            raise RuntimeError(f"/dmil/adapt: {res.message}\n{log()}")
        time.sleep(0.5)


def start_recording(probe: Probe, log: Any, timeout: float = 60.0) -> None:
    """dmil/record/start once the recorder hears every state input and the operator (see Probe)."""
    probe.start_recording(timeout, log)


# --- hardware path ---------------------------------------------------------------------------------
class StandinRun:
    """One task on the stand-in's cell + the hardware graph."""

    def __init__(self, graphs: Graphs, horizon_s: float) -> None:
        self.g, self.probe, self.horizon_s = graphs, graphs.probe, horizon_s
        self.probe.watch(itf.STANDIN_EPISODE)

    def episode_info(self) -> dict[str, Any]:
        msgs = self.probe.received(itf.STANDIN_EPISODE)
        return json.loads(msgs[-1].data) if msgs else {}

    def report(self) -> dict[str, Any]:
        return json.loads(self.probe.call(itf.STANDIN_REPORT).message)

    def reset(self) -> int:
        message = self.probe.call(itf.STANDIN_RESET).message  # "episode N of <task> started (seed S)"
        episode = int(message.split()[1])
        self.probe.wait_until(lambda: self.episode_info().get("episode") == episode, 10.0, "the new episode")
        return episode

    def drive(self, source: itf.ServiceSpec) -> dict[str, Any]:
        """Reset, let `source` drive until success or the horizon, stop it: the episode's outcome."""
        episode = self.reset()
        enable(self.probe, source, True)
        deadline = time.monotonic() + self.horizon_s
        while time.monotonic() < deadline and not self.episode_info().get("success"):
            self.g.check_alive()
            time.sleep(0.05)
        _, disabled_ns = enable(self.probe, source, False)
        time.sleep(0.3)  # whatever was in flight has arrived
        report = self.report()
        success_t = report["first_success_time"]
        late = [c for c in report["motion_commands"] if c[0] > disabled_ns]
        return {"episode": episode, "seed": report["seed"],
                "success": success_t is not None and success_t <= self.horizon_s,
                "time_s": success_t, "commands_after_disable": len(late), "stalls": report["stalls"],
                "servo": report["servo"]}

    def stale_state_check(self, drive_s: float = 1.0, outage_s: float = 1.0) -> dict[str, Any]:
        """Mid-episode the cell stops publishing its state: nothing may move the arm once the policy's
        state timeout and Servo's timeout have passed."""
        self.reset()
        enable(self.probe, itf.POLICY_ENABLE, True)
        time.sleep(drive_s)
        res = self.probe.call(itf.STANDIN_DROPOUT, SetBool.Request(data=True))
        last_state_ns = json.loads(res.message)["last_state_ns"]
        time.sleep(outage_s)
        report = self.report()
        self.probe.call(itf.STANDIN_DROPOUT, SetBool.Request(data=False))
        enable(self.probe, itf.POLICY_ENABLE, False)
        limit = last_state_ns + round((POLICY_STATE_TIMEOUT + SERVO_TIMEOUT) * 1e9)
        late = [c for c in report["motion_commands"] if c[0] > limit]
        moved_before = [c for c in report["motion_commands"] if c[0] <= last_state_ns]
        return {"commands_after_stale": len(late), "commands_before_outage": len(moved_before)}


def run_hardware(task: str, args: argparse.Namespace, latency: float, workdir: Path) -> dict[str, Any]:
    horizon = horizon_s(args.horizon_steps)
    demo_dir = workdir / "demos"
    graphs = Graphs(workdir, {
        "standin": ["standin", "--task", task, "--seed", str(args.seed), "--latency", str(latency),
                    "--position-noise", str(args.noise), "--camera-rate", str(args.camera_rate),
                    "--driver-rate", str(args.driver_rate), "--teleop-rate", str(args.rate)],
        "hardware": ["hardware", "--task", task, "--checkpoint", str(args.checkpoint),
                     "--rate", str(args.rate), "--demo-dir", str(demo_dir), *CELL_ARGS,
                     *(["--orientation-hold-gain", args.orientation_hold_gain] if args.orientation_hold_gain
                       else [])],
    })
    try:
        graphs.wait_services((itf.STANDIN_RESET, itf.STANDIN_REPORT, itf.RECORD_START, itf.ADAPT,
                              itf.POLICY_ENABLE, itf.TELEOP_ENABLE))
        run = StandinRun(graphs, horizon)
        demos = []
        for _ in range(args.demos):
            run.reset()
            start_recording(graphs.probe, graphs.log)
            demos.append(_demo(run))
        adapted = adapt(graphs.probe, graphs.log)
        episodes = [run.drive(itf.POLICY_ENABLE) for _ in range(args.episodes)]
        stale = run.stale_state_check()
    finally:
        graphs.close()
    return {"success": _rate(episodes), "episodes": episodes, "demos": demos, "adapt": adapted,
            "stale_state": stale, "horizon_s": round(horizon, 3)}


def _demo(run: StandinRun) -> dict[str, Any]:
    """The operator drives the episode already reset (recording runs); then record/stop."""
    enable(run.probe, itf.TELEOP_ENABLE, True)
    deadline = time.monotonic() + run.horizon_s
    while time.monotonic() < deadline and not run.episode_info().get("success"):
        run.g.check_alive()
        time.sleep(0.05)
    enable(run.probe, itf.TELEOP_ENABLE, False)
    res = run.probe.call(itf.RECORD_STOP)
    if not res.success:
        raise RuntimeError(f"record/stop: {res.message}\n{run.g.log()}")
    return {"success": bool(run.episode_info().get("success")), "saved": res.message.split(" (")[0]}


# --- sim path ----------------------------------------------------------------------------------------
def run_sim(task: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    graphs = Graphs(workdir, {"sim": [
        "sim", "--task", task, "--checkpoint", str(args.checkpoint), "--demo-dir", str(workdir / "demos"),
        "--lock-step", "true", "--teleop", "on", "--seed", str(args.seed),
        "--max-episode-steps", str(args.horizon_steps)]})
    probe = graphs.probe
    probe.watch(itf.EPISODE_INFO)

    def info() -> dict[str, Any]:
        msgs = probe.received(itf.EPISODE_INFO)
        return json.loads(msgs[-1].data) if msgs else {}

    def episode(source: itf.ServiceSpec) -> dict[str, Any]:
        message = probe.call(itf.SIM_RESET).message
        number = int(message.split()[1])
        enable(probe, source, True)
        final = probe.wait_until(lambda: (i := info()).get("done") and i.get("episode") == number and i,
                                 120.0, f"the end of {message}")
        enable(probe, source, False)
        return {"episode": number, "seed": final["seed"], "success": bool(final["success"]),
                "steps": final["step"]}

    try:
        graphs.wait_services((itf.SIM_RESET, itf.RECORD_START, itf.ADAPT, itf.POLICY_ENABLE,
                              itf.TELEOP_ENABLE))
        demos = []
        for _ in range(args.demos):
            start_recording(probe, graphs.log)
            demos.append(episode(itf.TELEOP_ENABLE))
            res = probe.call(itf.RECORD_STOP)
            if not res.success:
                raise RuntimeError(f"record/stop: {res.message}\n{graphs.log()}")
        adapted = adapt(probe, graphs.log)
        episodes = [episode(itf.POLICY_ENABLE) for _ in range(args.episodes)]
    finally:
        graphs.close()
    return {"success": _rate(episodes), "episodes": episodes, "demos": demos, "adapt": adapted}


def _rate(episodes: list[dict[str, Any]]) -> float:
    return round(sum(e["success"] for e in episodes) / len(episodes), 4) if episodes else 0.0


def _summary(per_task: dict[str, Any], path: str) -> float:
    rates = [r[path]["success"] for r in per_task.values()]
    return round(sum(rates) / len(rates), 4)


def summarize(per_task: dict[str, dict[str, Any]], curve: dict[str, dict[str, Any]],
              args: argparse.Namespace, latencies: list[float], t0: float, complete: bool) -> dict[str, Any]:
    """The JSON result for the tasks run so far (`complete`: all of --tasks)."""
    tasks = list(per_task)
    first = [rs for rs in curve.values()][0]
    after_disable = sum(e["commands_after_disable"] for r in first.values() for e in r["episodes"])
    after_stale = sum(r["stale_state"]["commands_after_stale"] for r in first.values())
    runs = [r for rs in curve.values() for r in rs.values()]  # every latency's run counts
    total = sum(e["commands_after_disable"] for r in runs for e in r["episodes"]) + \
        sum(r["stale_state"]["commands_after_stale"] for r in runs)
    success_hw = _summary(per_task, "hardware")
    success_sim = None if args.skip_sim else _summary(per_task, "sim")
    return {
        "per_task": {t: {"hardware": r["hardware"]["success"], "sim": r.get("sim", {}).get("success"),
                         "hardware_demos_succeeded": sum(d["success"] for d in r["hardware"]["demos"]),
                         "sim_demos_succeeded": (sum(d["success"] for d in r["sim"]["demos"])
                                                 if "sim" in r else None)}
                     for t, r in per_task.items()},
        "success_hardware": success_hw,
        "success_sim": success_sim,
        "ratio_hardware_vs_sim": (round(success_hw / success_sim, 4) if success_sim else None),
        "commands_after_disable": total,
        "commands_after_disable_detail": {"after_disable": after_disable, "after_stale_state": after_stale,
                                          "all_latencies": total,
                                          "episodes_checked": sum(len(r["episodes"]) for r in runs),
                                          "stale_state_checks": len(runs)},
        "latency_curve": {lat: {"success": round(sum(r["success"] for r in rs.values()) / len(rs), 4),
                                "per_task": {t: r["success"] for t, r in rs.items()}}
                          for lat, rs in curve.items()},
        "settings": {"tasks": tasks, "episodes": args.episodes, "demos": args.demos, "seed": args.seed,
                     "latency_s": latencies[0], "position_noise_m": args.noise,
                     "camera_rate_hz": args.camera_rate, "driver_rate_hz": args.driver_rate,
                     "horizon_steps_sim": args.horizon_steps,
                     "horizon_s_hardware": round(horizon_s(args.horizon_steps), 3),
                     "robot_speed_mps": ROBOT_SPEED, "control_rate_hz": args.rate,
                     "orientation_hold_gain": float(args.orientation_hold_gain or HOLD_GAIN),
                     "checkpoint": str(args.checkpoint)},
        "details": {t: {"sim": r.get("sim"), "hardware": {lat: rs[t] for lat, rs in curve.items()}}
                    for t, r in per_task.items()},
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "wall_s": round(time.monotonic() - t0, 1),
        "complete": complete,
    }


def _write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated Meta-World tasks")
    parser.add_argument("--episodes", type=int, default=10, help="policy episodes per task and path")
    parser.add_argument("--demos", type=int, default=3, help="recorded demonstrations per task")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i (both paths)")
    parser.add_argument("--latency", default="0.05",
                        help="perception latency [s]; a comma-separated list runs the hardware path once "
                             "per value (the degradation curve); the first value gives the ratio")
    parser.add_argument("--noise", type=float, default=0.002, help="perception noise per axis [m]")
    parser.add_argument("--camera-rate", type=float, default=30.0, help="perception rate [Hz]")
    parser.add_argument("--driver-rate", type=float, default=100.0,
                        help="joint_states/ee_pose rate [Hz] (the stand-in node's default is 500)")
    parser.add_argument("--rate", type=float, default=CONTROL_RATE,
                        help="policy and operator command rate [Hz] (the hardware graph's default)")
    parser.add_argument("--orientation-hold-gain", default="",
                        help="policy_node's orientation_hold_gain [1/s] (empty: config/hardware.yaml's)")
    parser.add_argument("--horizon-steps", type=int, default=300, help="sim episode horizon (DMIL protocol)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped ML10 checkpoint")
    parser.add_argument("--skip-sim", action="store_true", help="only the hardware path (no ratio)")
    parser.add_argument("--json", action="store_true", help="progress on stderr, stdout only the JSON line")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    # The ML10 prior: the bench adapts to ML10 test tasks, which the ML45 prior trained on.
    args.checkpoint = args.checkpoint or suite_checkpoint_dir("ml10")
    tasks = [t for t in args.tasks.split(",") if t]
    latencies = [float(x) for x in args.latency.split(",") if x]
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    t0 = time.monotonic()
    per_task: dict[str, dict[str, Any]] = {}
    curve: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="dmil_hardware_loop_") as tmp:
        for task in tasks:
            per_task[task] = {}
            if not args.skip_sim:
                workdir = Path(tmp) / task / "sim"
                workdir.mkdir(parents=True)
                per_task[task]["sim"] = run_sim(task, args, workdir)
                say(f"{task} sim: success {per_task[task]['sim']['success']}")
            for latency in latencies:
                workdir = Path(tmp) / task / f"hardware-{latency:g}"
                workdir.mkdir(parents=True)
                result = run_hardware(task, args, latency, workdir)
                curve.setdefault(f"{latency:g}", {})[task] = result
                if latency == latencies[0]:
                    per_task[task]["hardware"] = result
                say(f"{task} hardware (latency {latency * 1e3:g} ms): success {result['success']}, "
                    f"stale-state check {result['stale_state']}")
            if args.out and task != tasks[-1]:  # what is measured so far survives a killed run
                _write(args.out, summarize(per_task, curve, args, latencies, t0, complete=False))
    result = summarize(per_task, curve, args, latencies, t0, complete=True)
    if args.out:
        _write(args.out, result)
    if not args.json:
        for t, r in result["per_task"].items():
            print(f"{t}: hardware {r['hardware']}, sim {r['sim']}")
        print(f"ratio_hardware_vs_sim {result['ratio_hardware_vs_sim']}, "
              f"commands_after_disable {result['commands_after_disable']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
