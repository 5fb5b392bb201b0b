"""Real-time scheduling of the control loop: set when permitted, refused with a reason otherwise."""

from __future__ import annotations

import os
import threading

import pytest

from dmil_ros.ros import realtime

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux scheduling API")


def _policy(tid: int) -> int:
    return os.sched_getscheduler(tid)


def test_priority_zero_changes_nothing():
    assert realtime.set_realtime_priority(0) is None
    assert realtime.current_policy() == "other"


def test_fifo_for_every_thread_or_a_reason():
    """Raises every thread of this process (a second thread included) when permitted, else reports
    why and leaves none raised; the normal scheduler is restored for all of them at the end."""
    started, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), stop.wait(5)), daemon=True)
    worker.start()
    started.wait(5)
    tids = realtime.process_threads()
    try:
        problem = realtime.set_realtime_priority(10)
        if problem is not None:  # no permission here: nothing may be left half-raised
            assert "permission" in problem
            assert all(_policy(t) != os.SCHED_FIFO for t in tids)
        else:
            assert all(_policy(t) == os.SCHED_FIFO for t in tids if os.path.exists(f"/proc/self/task/{t}"))
            assert realtime.current_policy() == "fifo:10"
            realtime.normal_priority()
            assert realtime.current_policy() == "other"
    finally:
        realtime.normal_priority(*tids)
        stop.set()
        worker.join(5)
    assert realtime.current_policy() == "other"


def test_permission_error_is_reported_and_undone(monkeypatch):
    calls: list[tuple[int, int]] = []

    def refuse_second(tid: int, policy: int, _param: object) -> None:
        calls.append((tid, policy))
        if policy == os.SCHED_FIFO and sum(p == os.SCHED_FIFO for _, p in calls) == 2:
            raise PermissionError("EPERM")

    monkeypatch.setattr(os, "listdir", lambda _path: ["11", "12", "13"])
    monkeypatch.setattr(os, "sched_setscheduler", refuse_second)
    problem = realtime.set_realtime_priority(50)
    assert problem is not None and "rtprio" in problem
    # every thread is put back on the normal scheduler (all or nothing)
    assert [t for t, p in calls if p == os.SCHED_OTHER] == [11, 12, 13]
