"""Collect the four state parts arriving on separate topics and decide when a state is complete.

Two policies, matching the policy node's `trigger` parameter:
- exact: joint_states, ee_pose and object_poses carry the same header stamp (the sim bridge stamps
  every part of one step alike), so a step is acted on exactly once, whatever order DDS delivers
  the parts in. The goal only changes at reset, so the latest one is used.
- latest: every part's latest message, each received within `timeout` (robots whose drivers and
  perception stamp independently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dmil_ros.ros.observation import stamp_ns

ROLES = ("joint_states", "ee_pose", "object_poses", "goal")
SYNCED_ROLES = ("joint_states", "ee_pose", "object_poses")


@dataclass(frozen=True)
class StateSet:
    stamp_ns: int  # stamp of the synced parts (exact) or of the newest part (latest)
    joints: Any
    ee: Any
    objects: Any
    goal: Any


class StateSync:
    def __init__(self) -> None:
        self._msg: dict[str, Any] = {}
        self._arrival: dict[str, float] = {}

    def clear(self) -> None:
        self._msg.clear()
        self._arrival.clear()

    @property
    def received_any(self) -> bool:
        return bool(self._msg)

    def update(self, role: str, msg: Any, now: float) -> None:
        self._msg[role] = msg
        self._arrival[role] = now

    def _set(self, stamp: int) -> StateSet:
        m = self._msg
        return StateSet(stamp, m["joint_states"], m["ee_pose"], m["object_poses"], m["goal"])

    def exact(self) -> StateSet | None:
        """The complete state whose synced parts share a stamp, or None."""
        if any(r not in self._msg for r in ROLES):
            return None
        stamps = {stamp_ns(self._msg[r].header.stamp) for r in SYNCED_ROLES}
        return self._set(stamps.pop()) if len(stamps) == 1 else None

    def latest(self, now: float, timeout: float) -> StateSet | None:
        if self.problem(now, timeout, exact=False) is not None:
            return None
        return self._set(max(stamp_ns(self._msg[r].header.stamp) for r in ROLES))

    def problem(self, now: float, timeout: float, exact: bool) -> str | None:
        """Why there is no usable state right now (None if there is one)."""
        never = [r for r in ROLES if r not in self._msg]
        if never:
            return f"never received {', '.join(never)}"
        old = [r for r in ROLES if r != "goal" and now - self._arrival[r] > timeout]
        if old:  # no ages in the text: an unchanged reason is logged once, not every tick
            return f"stale state: no {', '.join(old)} within {timeout:.3g} s"
        if exact and self.exact() is None:
            return "state parts do not share a stamp (" + ", ".join(
                f"{r}={stamp_ns(self._msg[r].header.stamp)}" for r in SYNCED_ROLES) + ")"
        return None
