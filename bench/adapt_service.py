"""Wall time of the operator's `/dmil/adapt` (std_srvs/Trigger) on the running sim graph, 1 vs 3 demos.

Brings up the sim graph as `dmil bringup sim` does (sim_bridge + policy_node + demo_recorder +
scripted_teleop, lock-step, shipped checkpoint unless --checkpoint) on an isolated ROS domain, records
--demos demonstrations of --task with the scripted operator through dmil/record/start|stop, then for
each demo count N selects the newest N demos with `max_demos` (a dynamic policy_node parameter, set
through /policy_node/set_parameters like `ros2 param set`) and times --reps calls of /dmil/adapt:
service call -> response at this process, i.e. recorder -> policy node -> reading the MCAP demos ->
core adaptation -> answer. The last line printed is JSON:
  {"adapt_wall_s": {"1": {"p50", "max", "min", "runs"}, "3": {...}}, "adapt_reported_s": {...},
   "states": {"1": n, "3": n}, "task", "checkpoint", "loadavg_1min", "cpu_count", ...}

    python bench/adapt_service.py                   # reach-v3, 3 demos, 3 repetitions per count
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_srvs.srv import SetBool

from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.checkpoint_path import shipped_checkpoint_dir
from dmil_ros.ros.testing import Probe, isolated_ros_env

SET_POLICY_PARAMS = itf.ServiceSpec("policy_node/set_parameters", SetParameters, "`ros2 param set` service")


def _info(probe: Probe) -> dict:
    msgs = probe.received(itf.EPISODE_INFO)
    return json.loads(msgs[-1].data) if msgs else {}


def _enable(probe: Probe, spec: itf.ServiceSpec, on: bool) -> None:
    res = probe.call(spec, SetBool.Request(data=on))
    if not res.success:
        raise RuntimeError(f"{spec.name}: {res.message}")


def record_demo(probe: Probe, timeout: float = 60.0) -> dict:
    """One scripted demonstration: record/start (once every input is connected), reset, operate to the
    end of the episode, record/stop."""
    deadline = time.monotonic() + timeout
    while True:
        res = probe.call(itf.RECORD_START)
        if not res.success:
            raise RuntimeError(res.message)
        if "none yet" not in res.message:
            break
        probe.call(itf.RECORD_STOP)  # empty: discarded
        if time.monotonic() > deadline:
            raise TimeoutError(res.message)
        time.sleep(0.2)
    started = probe.call(itf.SIM_RESET).message  # "episode N of <task> started (seed S)"
    episode = int(re.match(r"episode (\d+) ", started).group(1))
    _enable(probe, itf.TELEOP_ENABLE, True)
    info = probe.wait_until(lambda: (i := _info(probe)).get("done") and i.get("episode") == episode and i,
                            timeout, f"the end of {started}")
    _enable(probe, itf.TELEOP_ENABLE, False)
    res = probe.call(itf.RECORD_STOP)
    if not res.success:
        raise RuntimeError(res.message)
    return info


def set_max_demos(probe: Probe, n: int) -> None:
    value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=n)
    request = SetParameters.Request(parameters=[Parameter(name="max_demos", value=value)])
    res = probe.call(SET_POLICY_PARAMS, request)
    if not res.results[0].successful:
        raise RuntimeError(f"max_demos={n}: {res.results[0].reason}")


def time_adapt(probe: Probe, reps: int) -> tuple[list[float], list[float], int]:
    """Wall times of `reps` /dmil/adapt calls, the adaptation seconds the policy reported, the states."""
    walls, reported, states = [], [], 0
    for _ in range(reps):
        t0 = time.perf_counter()
        res = probe.call(itf.ADAPT, timeout=300.0)
        walls.append(time.perf_counter() - t0)
        if not res.success:
            raise RuntimeError(res.message)
        m = re.search(r"(\d+) demo\(s\), (\d+) states, .*, ([0-9.]+) s,", res.message)
        if m:
            states = int(m.group(2))
            reported.append(float(m.group(3)))
    return walls, reported, states


def summary(values: list[float]) -> dict:
    a = np.array(values)
    return {"p50": round(float(np.median(a)), 3), "max": round(float(a.max()), 3),
            "min": round(float(a.min()), 3), "runs": len(a)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="reach-v3")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    parser.add_argument("--demos", type=int, default=3, help="demonstrations to record")
    parser.add_argument("--counts", default="1,3", help="numbers of demos to adapt on")
    parser.add_argument("--reps", type=int, default=3, help="adapt calls per count")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    checkpoint = args.checkpoint or shipped_checkpoint_dir()
    env = isolated_ros_env()
    with tempfile.TemporaryDirectory(prefix="dmil_bench_adapt_") as tmp:
        log = open(Path(tmp) / "bringup.log", "wb")  # noqa: SIM115 - closed below
        cmd = [sys.executable, "-m", "dmil_ros.ros.bringup", "sim", "--task", args.task,
               "--checkpoint", str(checkpoint), "--demo-dir", str(Path(tmp) / "demos"),
               "--lock-step", "true", "--teleop", "on"]
        graph = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        probe = Probe(int(env["ROS_DOMAIN_ID"]), name="adapt_bench")
        try:
            probe.watch(itf.EPISODE_INFO)
            for spec in (itf.SIM_RESET, itf.RECORD_START, itf.ADAPT, itf.TELEOP_ENABLE, SET_POLICY_PARAMS):
                if not probe.wait_for_service(spec, 60.0):
                    raise TimeoutError(f"{spec.name} never came up")
            episodes = [record_demo(probe) for _ in range(args.demos)]
            # One untimed call first: the recorder must have discovered the policy's dmil/policy/adapt
            # (it answers "not available" until then), and the first adaptation pays torch's warm-up.
            set_max_demos(probe, counts[0])
            t0 = time.perf_counter()
            while True:
                first = probe.call(itf.ADAPT, timeout=300.0)
                if first.success or "not available" not in first.message or time.perf_counter() - t0 > 60:
                    break
                time.sleep(0.2)
            first_s = time.perf_counter() - t0
            if not first.success:
                raise RuntimeError(first.message)
            walls, reported, states = {}, {}, {}
            for n in counts:
                set_max_demos(probe, n)
                w, r, s = time_adapt(probe, args.reps)
                walls[str(n)], reported[str(n)], states[str(n)] = summary(w), summary(r) if r else None, s
        except Exception:
            log.flush()
            print((Path(tmp) / "bringup.log").read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            probe.close()
            graph.send_signal(signal.SIGINT)
            try:
                graph.wait(timeout=30)
            except subprocess.TimeoutExpired:
                graph.kill()
            log.close()
    result = {
        "adapt_wall_s": walls,
        "adapt_reported_s": reported,
        "first_call_s": round(first_s, 3),
        "reps": args.reps,
        "states": states,
        "demo_steps": [e.get("step") for e in episodes],
        "demo_success": [e.get("success") for e in episodes],
        "task": args.task,
        "checkpoint": str(checkpoint),
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    for n in counts:
        print(f"{n} demo(s), {states[str(n)]} states: /dmil/adapt p50 {walls[str(n)]['p50']} s, "
              f"max {walls[str(n)]['max']} s ({walls[str(n)]['runs']} calls)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
