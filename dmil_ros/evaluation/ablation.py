"""The paper's ablations as single commands: sub-skill number K (Table 3), fine-tune steps (Table 6).

K ablation: one training run per K (the training config with model.num_skills=K; a run directory
that already holds best/ is reused), each evaluated on the same cells. Fine-tune steps: one
checkpoint (K=5 as in the paper, trained on demand) adapted with each number of steps at lr 1e-2.
Defaults are small (few iterations, see SMALL_TRAINING) so a smoke run finishes; scale up with
`--set train.iterations=...`, `--trials`, `--seeds`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmil_ros.evaluation.few_shot import Cell
from dmil_ros.evaluation.harness import EvalSettings, evaluate
from dmil_ros.evaluation.policies import ResolvedPolicy, checkpoint_present, resolve_policy
from dmil_ros.evaluation.table import column_keys, render_table

_log = logging.getLogger(__name__)

ABLATIONS: dict[str, tuple[int, ...]] = {"k": (2, 3, 5, 10), "finetune-steps": (10, 30, 50, 100, 300, 500)}
SMALL_TRAINING = ("train.iterations=300", "train.eval_interval=100")
FINETUNE_K = 5  # Table 6 uses K=5
FINETUNE_LR = 1e-2  # Table 6 uses lr=1e-2

Rows = list[tuple[str, list[dict[str, Any]]]]


def _trained(run_dir: Path, config: str, overrides: Sequence[str], progress: bool) -> ResolvedPolicy:
    from dmil_ros.training.config import load_config
    from dmil_ros.training.runner import train

    if not checkpoint_present(run_dir / "best"):
        cfg = load_config(config, [*SMALL_TRAINING, *overrides])
        _log.info("ablation: training %s into %s", cfg.method, run_dir)
        train(cfg, run_dir, progress=progress, overwrite=True)
    return resolve_policy(None, str(run_dir / "best"))


def k_ablation(
    values: Sequence[int],
    config: str,
    overrides: Sequence[str],
    out_root: Path,
    cells: Sequence[Cell],
    s: EvalSettings,
) -> tuple[Rows, str]:
    rows: Rows = []
    for k in values:
        resolved = _trained(out_root / f"k{k}", config, [*overrides, f"model.num_skills={k}"], s.progress)
        rows.append((str(k), [r.to_json() for r in evaluate(resolved, cells, s)]))
    return rows, render_table(rows, "Success rate vs. number of sub-skills K (paper Table 3)", row_header="K")


def finetune_ablation(
    values: Sequence[int],
    checkpoint: str | None,
    config: str,
    overrides: Sequence[str],
    out_root: Path,
    cells: Sequence[Cell],
    s: EvalSettings,
    lr: float = FINETUNE_LR,
) -> tuple[Rows, str]:
    if checkpoint is not None:
        base = resolve_policy(None, checkpoint)
    else:
        base = _trained(
            out_root / f"k{FINETUNE_K}", config, [*overrides, f"model.num_skills={FINETUNE_K}"], s.progress
        )
    rows: Rows = []
    for steps in values:
        resolved = ResolvedPolicy(base.method.with_adapt(steps=steps, lr=lr), base.policy, base.checkpoint)
        rows.append((str(steps), [r.to_json() for r in evaluate(resolved, cells, s)]))
    spread = []
    for col in column_keys(rows):
        means = [
            c["mean_success"]
            for _, cs in rows
            for c in cs
            if (c["suite"], c["split"], int(c["shots"])) == col
        ]
        spread.append(f"{max(means) - min(means):.3f}")
    table = render_table(
        rows,
        f"Success rate vs. fine-tune steps (lr {lr:g}; paper Table 6)",
        "fine-tune steps",
        [("Range", spread)],
    )
    return rows, table
