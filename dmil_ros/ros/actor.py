"""One state -> one action, fast: `Hierarchy.act` re-done in numpy for the policy node's control loop.

`Hierarchy.act` goes through torch: for a single 39-float state on one CPU thread the dispatch of
~30 small ops, the parameter-dict split and the tensor <-> numpy conversions cost as much as the
arithmetic (p50 ~0.5 ms for 4 x 512 on the development machine, ~0.2 ms here). `Actor` copies the
weights once (per hierarchy swap, off the control thread) into contiguous float32 arrays, one list per
network, and runs the same math with numpy matrix-vector products: normalise, high-level MLP,
softmax, argmax, then only the chosen sub-skill's MLP. Results equal `Hierarchy.act` up to float32
rounding (checked in test/test_ros_actor.py); the same ObservationError is raised for a bad state.
"""

from __future__ import annotations

import numpy as np

from dmil_ros.core.hierarchy import Hierarchy, ObservationError

Layers = list[tuple[np.ndarray, np.ndarray]]


def _numpy(t: object) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", copy=True).float().numpy())  # type: ignore[attr-defined]


class Actor:
    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        p = hierarchy.params
        n_high = sum(1 for k in p if k.startswith("high.") and k.endswith(".weight"))
        n_low = sum(1 for k in p if k.startswith("low.") and k.endswith(".weight"))
        self._high: Layers = [(_numpy(p[f"high.{i}.weight"]), _numpy(p[f"high.{i}.bias"]))
                              for i in range(n_high)]
        skills = p["low.0.weight"].shape[0]
        self._low: list[Layers] = [
            [(_numpy(p[f"low.{i}.weight"][k]), _numpy(p[f"low.{i}.bias"][k])) for i in range(n_low)]
            for k in range(skills)
        ]
        self._mean = np.asarray(hierarchy.normalizer.mean, np.float32)
        self._std = np.asarray(hierarchy.normalizer.std, np.float32)
        self._dim = hierarchy.config.obs_dim

    @staticmethod
    def _mlp(layers: Layers, x: np.ndarray) -> np.ndarray:
        last = len(layers) - 1
        for i, (w, b) in enumerate(layers):
            x = w @ x
            x += b
            if i < last:
                np.maximum(x, 0.0, out=x)
        return x

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        """Like Hierarchy.act: (action, active sub-skill, sub-skill probabilities)."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != (self._dim,):
            raise ObservationError(f"observation has shape {obs.shape}, expected ({self._dim},)")
        if not np.isfinite(obs).all():
            raise ObservationError("observation contains NaN or infinite values")
        x = ((obs - self._mean) / self._std).astype(np.float32, copy=False)
        logits = self._mlp(self._high, x)
        e = np.exp(logits - logits.max())
        probs = e / e.sum()
        k = int(probs.argmax())
        return self._mlp(self._low[k], x), k, probs
