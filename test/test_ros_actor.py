"""The policy node's numpy Actor computes what Hierarchy.act computes (up to float32 rounding)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.data import Normalizer  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy, ObservationError  # noqa: E402
from dmil_ros.ros.actor import Actor  # noqa: E402


@pytest.mark.parametrize("hidden", [(64, 64), (512, 512, 512, 512)])
def test_actor_matches_hierarchy_act(hidden: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=39), rng.uniform(0.5, 2, 39)
    normalizer = Normalizer(mean.astype(np.float32), std.astype(np.float32))
    h = Hierarchy.initialize(ModelConfig(39, 4, 3, hidden), seed=3, normalizer=normalizer)
    actor = Actor(h)
    for _ in range(200):
        obs = rng.normal(size=39).astype(np.float32) * 3
        a_ref, k_ref, p_ref = h.act(obs)
        a, k, p = actor.act(obs)
        assert k == k_ref
        np.testing.assert_allclose(a, a_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p, p_ref, rtol=1e-5, atol=1e-7)
    assert actor.hierarchy is h


def test_actor_refuses_bad_observations() -> None:
    actor = Actor(Hierarchy.initialize(ModelConfig(39, 4, 3, (8,))))
    with pytest.raises(ObservationError, match="shape"):
        actor.act(np.zeros(38, np.float32))
    with pytest.raises(ObservationError, match="NaN"):
        actor.act(np.full(39, np.nan, np.float32))
