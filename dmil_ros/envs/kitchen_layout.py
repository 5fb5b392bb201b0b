"""The Franka Kitchen observation and action layout (kitchen_env.py documents every index), shared by
the env and its scripted expert."""

from __future__ import annotations

OBS_DIM = 30
ACTION_DIM = 9
N_ROBOT_JOINTS = 9
KETTLE_QPOS = slice(23, 30)
FINGER_MAX = 0.04  # m per finger (joint range), so opening = (q7 + q8) / 0.08
