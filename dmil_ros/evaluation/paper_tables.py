"""The paper's tables, each built from result files by one function, so documentation never types a number.

Result files follow `results/<suite>_<split>_<method>.json` (what `dmil eval --out` writes; one file
may hold the 1- and 3-shot cells), e.g. results/ml10_test_dmil.json, results/ml45_train_mil.json,
results/kitchen_test_bc-scratch.json; a method's hyphens may also be underscores
(ml10_test_bc_scratch.json). Ablations have one file each. A missing file gives "n/a" cells: the
table shows what exists, never fails for what does not.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmil_ros.envs.kitchen_tasks import UNSEEN
from dmil_ros.evaluation.results import ResultFileError, read_entries
from dmil_ros.evaluation.table import ColumnKey, describe, render_table

# Table 1, 4 and 8: ML10 and ML45 x meta-training and meta-testing x 1- and 3-shot.
METAWORLD_FILES = [(suite, split) for suite in ("ml10", "ml45") for split in ("train", "test")]
METAWORLD_COLUMNS: list[ColumnKey] = [(suite, split, k) for suite, split in METAWORLD_FILES for k in (1, 3)]


@dataclass(frozen=True)
class PaperTable:
    title: str
    rows: tuple[tuple[str, str], ...] = ()  # (row label, method) read from <suite>_<split>_<method>.json
    kitchen: bool = False  # rows: the unseen combinations; columns: `rows`' methods
    ablation: str = ""  # an ablation's result file instead


TABLES: dict[str, PaperTable] = {
    "1": PaperTable(
        "Table 1: few-shot success rates on Meta-World (K = 3)",
        (("DMIL", "dmil"), ("MIL", "mil"), ("multi-task BC + fine-tune", "multitask-bc"),
         ("BC from scratch", "bc-scratch")),
    ),  # fmt: skip
    "2": PaperTable(
        "Table 2: completed sub-tasks on the four unseen kitchen combinations (K = 4)",
        (("DMIL", "dmil"), ("multi-task BC + fine-tune", "multitask-bc"), ("BC from scratch", "bc-scratch")),
        kitchen=True,
    ),
    "4": PaperTable(
        "Table 4: meta-learning one level only (DMIL-High, DMIL-Low) against both (DMIL)",
        (("DMIL-High", "dmil-high"), ("DMIL-Low", "dmil-low"), ("DMIL", "dmil")),
    ),
    "5": PaperTable(
        "Table 5: kitchen, completed sub-tasks vs. number of sub-skills K", ablation="ablation-k-kitchen"
    ),
    "6": PaperTable("Table 6: success rate vs. fine-tune steps (lr 0.01)", ablation="ablation_finetune_ml10"),
    "8": PaperTable(
        "Table 8: hard against soft EM labels",
        (("DMIL (hard EM)", "dmil"), ("DMIL-Soft (soft EM)", "dmil-soft")),
    ),
}


def result_file(results: Path, suite: str, split: str, method: str) -> Path | None:
    for name in dict.fromkeys((method, method.replace("-", "_"))):
        path = results / f"{suite}_{split}_{name}.json"
        if path.is_file():
            return path
    return None


def _cells(path: Path, warn: list[str]) -> list[dict[str, Any]]:
    try:
        return [c for _, cells in read_entries(path) for c in cells]
    except ResultFileError as e:
        warn.append(str(e))
        return []


def build(name: str, results: str | Path = "results") -> str:
    """Table `name` (a key of TABLES) as Markdown, from the files under `results`."""
    spec = TABLES[name]
    results = Path(results)
    warn: list[str] = []
    used: list[str] = []
    if spec.ablation:
        path = results / f"{spec.ablation}.json"
        try:
            entries = read_entries(path) if path.is_file() else []
        except ResultFileError as e:
            warn.append(str(e))
            entries = []
        if path.is_file():
            used.append(path.name)
        body = render_table(entries, spec.title, "K" if "K" in spec.title else "fine-tune steps",
                            footer=describe(entries) if entries else "n/a: no result file yet.")  # fmt: skip
    else:
        entries = []
        for label, method in spec.rows:
            cells = []
            for suite, split in [("kitchen", "test")] if spec.kitchen else METAWORLD_FILES:
                path = result_file(results, suite, split, method)
                if path is not None:
                    used.append(path.name)
                    found = _cells(path, warn)
                    mine = [c for c in found if spec.kitchen or (c["suite"], c["split"]) == (suite, split)]
                    cells += mine
            entries.append((label, cells))
        columns: Sequence[ColumnKey] = [c.label for c in UNSEEN] if spec.kitchen else METAWORLD_COLUMNS
        footer = describe([e for e in entries if e[1]]) if any(cells for _, cells in entries) else ""
        body = render_table(entries, spec.title, columns=columns, footer=footer)
    for w in warn:
        print(f"dmil table: {w}", file=sys.stderr)
    sources = ", ".join(f"results/{u}" for u in dict.fromkeys(used)) or "none yet"
    note = f"From {sources}; n/a: no result yet (`dmil table {name}` regenerates this)."
    return body.rstrip("\n") + f"\n\n{note}\n"
