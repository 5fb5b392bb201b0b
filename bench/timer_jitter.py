"""Timer wake-up latency of this machine, with no ROS and no policy (what cyclictest measures).

A thread at SCHED_FIFO sleeps to absolute deadlines (clock_nanosleep, TIMER_ABSTIME) at --rate Hz and
records how late each wake-up is. Every stall here is the platform's (kernel, hypervisor, other
tenants' vCPUs), not dmil_ros's: run it beside bench/control_latency.py to tell the two apart. With
--stalls-ms it lists the monotonic times (CLOCK_MONOTONIC seconds, the clock time.monotonic() and
perf_counter() read on Linux) of wake-ups later than that, to line them up with missed control cycles.
CPU steal time (/proc/stat) over the run is reported too.

    python bench/timer_jitter.py --duration 60
The last line printed is JSON: {"p50_us", "p99_us", "max_us", "over_1ms", "over_2ms", "over_5ms", ...}
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import time

import numpy as np

from dmil_ros.ros.realtime import current_policy, normal_priority, set_realtime_priority

_CLOCK_MONOTONIC = 1
_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _steal_ticks() -> int:
    """Aggregate CPU steal time in clock ticks (the 8th value of /proc/stat's cpu line), 0 if unknown."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return 0


def measure(duration: float, rate: float, stall_ms: float) -> dict:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    sleep = libc.clock_nanosleep
    sleep.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Timespec), ctypes.c_void_p]
    period = int(1e9 / rate)
    n = int(duration * rate)
    late = np.empty(n, dtype=np.int64)
    wake = np.empty(n, dtype=np.int64)
    deadline = _Timespec()
    gc.collect()
    gc.freeze()
    steal0 = _steal_ticks()
    due = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + period
    for k in range(n):
        deadline.tv_sec, deadline.tv_nsec = divmod(due, 1_000_000_000)
        sleep(_CLOCK_MONOTONIC, _TIMER_ABSTIME, ctypes.byref(deadline), None)
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        late[k] = now - due
        wake[k] = now
        due += period
        if now > due:  # a stall longer than a period: skip the deadlines it ate instead of bursting
            due += (now - due) // period * period + period
    steal = (_steal_ticks() - steal0) / os.sysconf("SC_CLK_TCK")
    late_us = late / 1e3
    stalls = wake[late_us > stall_ms * 1e3] / 1e9
    return {
        "p50_us": round(float(np.percentile(late_us, 50)), 1),
        "p99_us": round(float(np.percentile(late_us, 99)), 1),
        "max_us": round(float(late_us.max()), 1),
        "over_1ms": int((late_us > 1e3).sum()),
        "over_2ms": int((late_us > 2e3).sum()),
        "over_5ms": int((late_us > 5e3).sum()),
        "stall_times_s": [round(float(t), 3) for t in stalls],
        "steal_s": round(steal, 3),
        "rate_hz": rate,
        "duration_s": duration,
        "n": n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--rate", type=float, default=1000.0, help="wake-ups per second")
    parser.add_argument("--realtime-priority", type=int, default=50,
                        help="SCHED_FIFO priority (as bench/control_latency.py); 0: normal scheduler")
    parser.add_argument("--stalls-ms", type=float, default=2.0,
                        help="list the times of wake-ups later than this [ms]")
    args = parser.parse_args(argv)
    problem = set_realtime_priority(args.realtime_priority)
    try:
        result = measure(args.duration, args.rate, args.stalls_ms)
        result["scheduler"] = current_policy()
    finally:
        normal_priority()
    result["realtime_problem"] = problem
    result["cpu_count"] = os.cpu_count()
    result["loadavg_1min"] = round(os.getloadavg()[0], 2)
    print(f"{result['n']} wake-ups at {args.rate:g} Hz: p50 {result['p50_us']} us, "
          f"p99 {result['p99_us']} us, max {result['max_us']} us, "
          f"over 2 ms: {result['over_2ms']}, over 5 ms: {result['over_5ms']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
