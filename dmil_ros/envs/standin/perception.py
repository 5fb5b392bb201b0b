"""Object poses as a camera pipeline delivers them: its own rate, a latency, and Gaussian noise.

A frame is captured every 1/rate s (stamped with the capture time, as perception stamps the image),
its object positions perturbed by N(0, position_noise^2) per axis and orientations by a random rotation
of N(0, orientation_noise^2) per axis; it is released `latency` s after the capture. Unobserved
orientations (all-zero quaternions in Meta-World's layout) stay zero.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from dmil_ros.envs.base import RobotState


@dataclass(frozen=True)
class PerceptionSettings:
    rate: float = 30.0  # frames per second
    latency: float = 0.05  # capture -> delivery [s]
    position_noise: float = 0.002  # standard deviation per axis [m]
    orientation_noise: float = 0.0  # standard deviation per axis [rad]

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.latency < 0 or self.position_noise < 0 or self.orientation_noise < 0:
            raise ValueError(f"invalid perception settings {self}")


@dataclass(frozen=True)
class ObjectFrame:
    capture_time: float  # s on the caller's clock
    positions: np.ndarray  # (n, 3)
    orientations: np.ndarray  # (n, 4) xyzw


class Perception:
    def __init__(self, settings: PerceptionSettings, seed: int = 0) -> None:
        self.settings = settings
        self._rng = np.random.default_rng(seed)
        self._queue: deque[tuple[float, ObjectFrame]] = deque()
        self._next_capture = 0.0

    def reset(self, now: float, seed: int) -> None:
        """Drop frames in flight (they show the previous scene); the next capture is at `now`."""
        self._queue.clear()
        self._next_capture = now
        self._rng = np.random.default_rng(seed)

    def capture_due(self, now: float) -> bool:
        return now >= self._next_capture

    def capture(self, now: float, state: RobotState) -> None:
        """Take a frame of `state` at `now` (call when capture_due)."""
        s = self.settings
        positions = np.asarray(state.object_positions, dtype=np.float64)
        positions = positions + self._rng.normal(0.0, s.position_noise, positions.shape)
        orientations = np.array([_perturb(q, self._rng, s.orientation_noise)
                                 for q in state.object_orientations])
        self._queue.append((now + s.latency, ObjectFrame(now, positions, orientations.reshape(-1, 4))))
        period = 1.0 / s.rate
        # The next capture on the camera's own clock; after a stall, resume instead of bursting.
        self._next_capture = max(self._next_capture + period, now + 0.5 * period)

    def released(self, now: float) -> list[ObjectFrame]:
        """Frames whose latency has elapsed, oldest first."""
        out = []
        while self._queue and self._queue[0][0] <= now:
            out.append(self._queue.popleft()[1])
        return out


def _perturb(quat_xyzw: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    q = np.asarray(quat_xyzw, dtype=np.float64)
    if sigma == 0.0 or not np.any(q):
        return q.copy()
    rotvec = rng.normal(0.0, sigma, 3)
    angle = float(np.linalg.norm(rotvec))
    if angle == 0.0:
        return q.copy()
    axis = rotvec / angle
    dq = np.append(axis * np.sin(angle / 2), np.cos(angle / 2))  # xyzw
    x1, y1, z1, w1 = dq
    x2, y2, z2, w2 = q
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
                     w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])


def with_objects(state: RobotState, frame: ObjectFrame) -> RobotState:
    """`state` with the objects as `frame` saw them."""
    return dataclasses.replace(state, object_positions=frame.positions,
                               object_orientations=frame.orientations)
