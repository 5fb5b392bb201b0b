"""The scripted expert through the same harness: no training, no adaptation (a sanity ceiling)."""

from __future__ import annotations

from collections.abc import Sequence

from dmil_ros.baselines.base import Adaptation, Method
from dmil_ros.core.data import Demo
from dmil_ros.core.hierarchy import Hierarchy


class ExpertMethod(Method):
    needs_training = False

    def adapt(self, policy: Hierarchy | None, demos: Sequence[Demo], seed: int = 0) -> Adaptation:
        return Adaptation(None, 0.0, 0.0, 0.0, {"expert": True})
