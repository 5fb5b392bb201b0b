"""Result files: what `dmil eval --json/--out` writes and what the table commands read.

A run's JSON states how it was measured (env, protocol, horizon, trials, seeds), the method and its
settings, and `cells`: one dict per table cell (`CellResult.to_json`: suite, split, label, tasks,
shots, method, checkpoint, score, mean, stderr, stderr_over, per_seed, per_task, per_task_per_seed,
adaptation statistics; kitchen cells add sub-task completion). Summaries for readers who want one
number: Meta-World `mean_success`, `stderr` and `per_task` (one cell: the cell's own fields at the
top level; several: keyed 'suite/split/k-shot'), kitchen `per_combo`, `stderr` and `min_completed`.
An ablation's JSON holds `rows`: the cells of each value.

`read_entries` also reads the files earlier versions wrote (Meta-World cells with `mean_success`,
kitchen rows with `mean_completed` under `combos`), so every file in results/ renders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dmil_ros.envs.kitchen_tasks import SUITE_PREFIX
from dmil_ros.evaluation.pipeline import CellResult, EvalSettings


class ResultFileError(ValueError):
    """A file is not a `dmil eval --out` result; the message says why."""


def cell_key(cell: Mapping[str, Any]) -> str:
    return cell["label"] or f"{cell['suite']}/{cell['split']}/{cell['shots']}-shot"


def run_json(results: Sequence[CellResult], settings: EvalSettings, wall_s: float) -> dict[str, Any]:
    cells = [r.to_json() for r in results]
    method = results[0].cell.policy.method
    checkpoints = list(dict.fromkeys(c["checkpoint"] for c in cells))
    out: dict[str, Any] = {
        "method": method.name, "checkpoint": checkpoints[0] if len(checkpoints) == 1 else checkpoints,
        **settings.describe(), "score": results[0].scorer.name, "settings": method.describe(),
    }  # fmt: skip
    if settings.env == "kitchen":
        out |= {
            "split": cells[0]["split"], "shots": cells[0]["shots"],
            "per_combo": {c["label"]: c["mean"] for c in cells},
            "stderr": {c["label"]: c["stderr"] for c in cells},
            "min_completed": min(c["mean"] for c in cells),
        }  # fmt: skip
    elif len(cells) == 1:
        out |= {**cells[0], "mean_success": cells[0]["mean"]}
    else:
        out |= {
            "mean_success": {cell_key(c): c["mean"] for c in cells},
            "stderr": {cell_key(c): c["stderr"] for c in cells},
            "per_task": {cell_key(c): c["per_task"] for c in cells},
        }
    return {**out, "cells": cells, "wall_s": round(wall_s, 1)}


def _require(d: Mapping[str, Any], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise ResultFileError(f"missing {', '.join(repr(k) for k in missing)}")


def _metaworld_cell(c: Mapping[str, Any]) -> dict[str, Any]:
    if "mean" in c:
        _require(c, ("method", "suite", "split", "shots", "mean"))
        return {"label": "", **c}
    _require(c, ("method", "suite", "split", "shots", "mean_success"))  # written before the unified schema
    return {"label": "", "score": "success_rate", "stderr_over": "seeds", **c, "mean": c["mean_success"]}


def _kitchen_cells(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "cells" in run:
        return [dict(c) for c in run["cells"]]
    _require(run, ("combos", "trials", "seeds", "shots", "horizon"))  # written before the unified schema
    cells = []
    for row in run["combos"]:
        _require(row, ("label", "mean_completed"))
        excluded = row.get("excluded")
        cells.append({
            "suite": f"{SUITE_PREFIX}{excluded}" if excluded else "kitchen",
            "split": run.get("split", "test"),
            "label": row["label"], "tasks": [row["task"]] if "task" in row else [], "shots": run["shots"],
            "method": run.get("method"), "checkpoint": row.get("checkpoint"), "env": "kitchen",
            "protocol": "kitchen", "horizon": run["horizon"], "trials": run["trials"], "seeds": run["seeds"],
            "score": "completed_subtasks", "mean": row["mean_completed"], "stderr": row.get("stderr"),
            "stderr_over": "episodes",
            **{k: row[k] for k in ("episodes", "subtask_completion", "full_success", "adapt") if k in row},
        })  # fmt: skip
    return cells


def _is_kitchen(run: Mapping[str, Any]) -> bool:
    return run.get("env") == "kitchen" or "combos" in run


def read_entries(path: str | Path) -> list[tuple[str, list[dict[str, Any]]]]:
    """The table entries of a result file: one (method, cells) for a Meta-World run, one (file name,
    cells) for a kitchen run, one (value, cells) per value of an ablation. ResultFileError says why
    a file cannot be read."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        if not isinstance(data, dict):
            raise ResultFileError("not a JSON object")
        if "rows" in data and "ablation" in data:
            runs = data["rows"].items()
        else:
            runs = [(None, data)]
        entries = []
        for name, run in runs:
            if isinstance(run, dict) and _is_kitchen(run):
                entries.append((str(name or p.stem), _kitchen_cells(run)))
            else:
                found = run.get("cells", [run]) if isinstance(run, dict) else run
                cells = [_metaworld_cell(c) for c in found]
                if not cells:
                    raise ResultFileError("no cells")
                entries.append((str(name or cells[0]["method"]), cells))
        return entries
    except (OSError, json.JSONDecodeError, ResultFileError, KeyError, TypeError, AttributeError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise ResultFileError(f"{p}: not a `dmil eval --out` file ({what})") from e
