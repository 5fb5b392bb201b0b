"""The paper's ablations as single commands: sub-skill number K (Tables 3 and 5), fine-tune steps (6).

K: one training run per K (the training config with model.num_skills=K; a run directory that
already holds best/ is reused), each evaluated on the same cells; on the kitchen, one run per K and
excluded object (`<out>/kitchen-k<K>/no_<object>/`). Fine-tune steps: one checkpoint (K=5 as in the
paper, trained on demand) adapted with each number of steps at lr 1e-2. Meta-World's runs are small
by default (see SMALL_TRAINING) so a smoke run finishes; scale up with `--set train.iterations=...`,
`--trials`, `--seeds`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dmil_ros.envs.kitchen_tasks import excluded_object
from dmil_ros.evaluation.pipeline import CellResult
from dmil_ros.evaluation.policies import OnDemand, ResolvedPolicy, load_policy, train_or_reuse
from dmil_ros.evaluation.table import column_key, render_table

ABLATIONS: dict[str, dict[str, tuple[int, ...]]] = {
    "metaworld": {"k": (2, 3, 5, 10), "finetune-steps": (10, 30, 50, 100, 300, 500)},
    "kitchen": {"k": (2, 4, 8)},
}
SMALL_TRAINING = ("train.iterations=300", "train.eval_interval=100")
FINETUNE_K = 5  # Table 6 uses K=5
FINETUNE_LR = 1e-2  # Table 6 uses lr=1e-2

Rows = list[tuple[str, list[dict[str, Any]]]]
PolicyFor = Callable[[str], ResolvedPolicy]  # suite -> the policy its cells run
Evaluate = Callable[[PolicyFor], Sequence[CellResult]]


def trained_policy(
    run_dir: Path, method: str, training: OnDemand, before: Sequence[str] = (), after: Sequence[str] = ()
) -> ResolvedPolicy:
    return load_policy(train_or_reuse(run_dir, method, training, before, after), method)


def k_rows(
    values: Sequence[int], method: str, training: OnDemand, out_root: Path, evaluate: Evaluate, kitchen: bool
) -> Rows:
    rows: Rows = []
    for k in values:
        skills = [f"model.num_skills={k}"]
        if kitchen:
            per_object = _kitchen_runs(out_root / f"kitchen-k{k}", method, training, skills)
            rows.append((f"K={k}", [r.to_json() for r in evaluate(per_object)]))
        else:
            policy = trained_policy(out_root / f"k{k}", method, training, SMALL_TRAINING, skills)
            rows.append((str(k), [r.to_json() for r in evaluate(lambda _suite, p=policy: p)]))
    return rows


def _kitchen_runs(root: Path, method: str, training: OnDemand, overrides: Sequence[str]) -> PolicyFor:
    """suite kitchen-no-<object> -> the run `root/no_<object>`, trained first if missing."""
    policies: dict[str, ResolvedPolicy] = {}

    def policy_for(suite: str) -> ResolvedPolicy:
        if suite not in policies:
            run = root / f"no_{excluded_object(suite)}"
            policies[suite] = trained_policy(run, method, training, after=[*overrides, f"suite={suite}"])
        return policies[suite]

    return policy_for


def finetune_rows(
    values: Sequence[int], base: ResolvedPolicy, evaluate: Evaluate, lr: float = FINETUNE_LR
) -> Rows:
    rows: Rows = []
    for steps in values:
        policy = base.with_adapt(steps=steps, lr=lr)
        rows.append((str(steps), [r.to_json() for r in evaluate(lambda _suite, p=policy: p)]))
    return rows


def k_table(rows: Rows, kitchen: bool) -> str:
    if kitchen:
        return render_table(rows, "Kitchen: completed sub-tasks vs. K (paper Table 5)")
    return render_table(rows, "Success rate vs. number of sub-skills K (paper Table 3)", "K")


def finetune_table(rows: Rows, lr: float = FINETUNE_LR) -> str:
    """With a last row: the range (max - min) of each column over the step counts."""
    keys = list(dict.fromkeys(column_key(c) for _, cells in rows for c in cells))
    spread = []
    for key in keys:
        means = [c["mean"] for _, cells in rows for c in cells if column_key(c) == key]
        spread.append(f"{max(means) - min(means):.3f}")
    title = f"Success rate vs. fine-tune steps (lr {lr:g}; paper Table 6)"
    return render_table(rows, title, "fine-tune steps", columns=keys, extra_rows=[("Range", spread)])
