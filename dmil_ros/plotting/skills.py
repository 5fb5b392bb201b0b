"""Sub-skill probabilities of the high level along one demonstration (paper Fig. 3)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402


def save_figure(fig: plt.Figure, title: str, path: Path) -> Path:
    """Title, lay out and write a figure as PNG (creating its folder), then free it."""
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def skill_colors(k: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(k)]


def plot_skill_probabilities(
    panels: list[tuple[str, Hierarchy]], observations: np.ndarray, path: str | Path, title: str
) -> Path:
    """One panel per (label, hierarchy): p(z_t = k | s_t) over the demo's steps, argmax as a band."""
    path = Path(path)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True, squeeze=False)
    t = np.arange(len(observations))
    for ax, (label, h) in zip(axes[:, 0], panels, strict=False):
        _, skills, probs = h.predict(observations)
        colors = skill_colors(probs.shape[1])
        for k in range(probs.shape[1]):
            ax.plot(t, probs[:, k], color=colors[k], lw=1.6, label=f"sub-skill {k}")
        ax.scatter(t, np.full(len(t), 1.06), c=[colors[s] for s in skills], s=6, marker="s", clip_on=False)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("probability")
        ax.set_title(label, fontsize=10)
    axes[0, 0].legend(loc="center right", fontsize=8)
    axes[-1, 0].set_xlabel("time step")
    return save_figure(fig, title, path)
