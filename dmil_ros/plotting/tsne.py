"""t-SNE of demonstration states coloured by the sub-skill the high level picks (paper Fig. 4).

One embedding of the states (t-SNE of the normalised observations) is shared by both panels, so
the only difference between "before" and "after adaptation" is the colouring.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.plotting.skills import save_figure, skill_colors  # noqa: E402


def embed(observations: np.ndarray, normalizer_of: Hierarchy, seed: int = 0) -> np.ndarray:
    x = normalizer_of.normalizer(observations.astype(np.float32))
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def plot_tsne(
    panels: list[tuple[str, Hierarchy]], observations: np.ndarray, path: str | Path, title: str, seed: int = 0
) -> Path:
    path = Path(path)
    xy = embed(observations, panels[0][1], seed)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (label, h) in zip(axes[0], panels, strict=False):
        _, skills, probs = h.predict(observations)
        colors = skill_colors(probs.shape[1])
        for k in range(probs.shape[1]):
            m = skills == k
            ax.scatter(xy[m, 0], xy[m, 1], s=5, color=colors[k], label=f"sub-skill {k} ({m.sum()})")
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2, loc="best")
    return save_figure(fig, title, path)
