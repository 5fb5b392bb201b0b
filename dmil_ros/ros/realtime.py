"""Real-time scheduling for the control loop (Linux SCHED_FIFO), as ros2_control does for its own.

On a shared machine the default scheduler lets any other process preempt the policy node for a
time slice (milliseconds), which is what makes control cycles late. With SCHED_FIFO the node's
threads run as soon as a message wakes them. Every thread of the process is raised (the executor
thread and the middleware's receive threads: a late receive thread delays the executor just as
much); CPU-heavy helper threads (adaptation) drop back with `normal_priority()` at their start,
since threads inherit their creator's policy.

Needs permission: root, CAP_SYS_NICE, or an rtprio limit for the user (e.g. in
/etc/security/limits.conf: `@realtime - rtprio 99`, the same setup ros2_control documents).
"""

from __future__ import annotations

import os


def set_realtime_priority(priority: int) -> str | None:
    """SCHED_FIFO at `priority` (1-99) for every thread of this process; 0 does nothing.

    Returns None on success, else why not (the caller logs it and runs on the normal scheduler).
    """
    if priority <= 0:
        return None
    if not hasattr(os, "sched_setscheduler"):
        return "SCHED_FIFO is not available on this platform"
    threads = process_threads()
    param = os.sched_param(priority)
    for tid in threads:
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, param)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
        except PermissionError:
            normal_priority(*threads)  # all or nothing
            return ("no permission for SCHED_FIFO (needs root, CAP_SYS_NICE or an rtprio limit, e.g. "
                    "'@realtime - rtprio 99' in /etc/security/limits.conf)")
    return None


def process_threads() -> list[int]:
    """Thread ids of this process (Linux /proc), or [0] (the calling thread) where not listable."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def normal_priority(*threads: int) -> None:
    """Back to the default scheduler (the calling thread if none given); errors are ignored."""
    if not hasattr(os, "sched_setscheduler"):
        return
    for tid in threads or (0,):
        try:
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


def current_policy(tid: int = 0) -> str:
    """'fifo:<priority>', 'other' or 'unknown' for thread/process `tid` (0: the calling thread)."""
    if not hasattr(os, "sched_getscheduler"):
        return "other"
    try:
        if os.sched_getscheduler(tid) == os.SCHED_FIFO:
            return f"fifo:{os.sched_getparam(tid).sched_priority}"
    except OSError:
        return "unknown"
    return "other"
