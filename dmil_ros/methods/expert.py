"""The scripted expert through the same harness: no training, no adaptation (a sanity ceiling)."""

from __future__ import annotations

from collections.abc import Sequence

from dmil_ros.core.data import Demo
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.methods.base import Adaptation, Method


class ExpertMethod(Method):
    needs_training = False

    def adapt(self, policy: Hierarchy | None, demos: Sequence[Demo], seed: int = 0) -> Adaptation:
        return Adaptation(None, 0.0, 0.0, 0.0, {"expert": True})
