"""The one Markdown table renderer, for every table the project prints or documents.

Input: entries (label, cells), each cell a result dict (evaluation/results.py). A cell sits in the
column of where it was measured: Meta-World cells by suite x {meta-training, meta-testing} x k-shot
(paper Table 1, 3, 4, 6, 8), kitchen cells by their combination. Success-rate tables have an entry
per row (methods, K values, fine-tune steps); kitchen tables, like the paper's Tables 2 and 5, have
the combinations as rows and an entry per column. Text: mean ± standard error; "n/a" where an entry
has no such cell (a result not produced yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SPLIT_NAMES = {"train": "meta-training", "test": "meta-testing"}
SUITE_NAMES = {"ml10": "ML10", "ml10-dmil": "ML10 (DMIL split)", "ml45": "ML45", "custom": "custom"}
MISSING = "n/a"
KITCHEN_ROW_HEADER = "Task (unseen; excluded object)"

Cells = Sequence[Mapping[str, Any]]
ColumnKey = tuple[str, str, int] | str  # (suite, split, shots) or a kitchen combination's label


def column_key(cell: Mapping[str, Any]) -> ColumnKey:
    return str(cell["label"]) if cell.get("label") else (cell["suite"], cell["split"], int(cell["shots"]))


def column_title(key: ColumnKey) -> str:
    if isinstance(key, str):
        return key
    suite, split, shots = key
    return f"{SUITE_NAMES.get(suite, suite)} {SPLIT_NAMES.get(split, split)} {shots}-shot"


def _ordered_keys(cells: Cells) -> list[ColumnKey]:
    labels = list(dict.fromkeys(c["label"] for c in cells if c.get("label")))
    grid = [c for c in cells if not c.get("label")]
    suites = list(dict.fromkeys(c["suite"] for c in grid))
    splits = sorted(
        {c["split"] for c in grid},
        key=lambda s: (list(SPLIT_NAMES).index(s) if s in SPLIT_NAMES else len(SPLIT_NAMES), s),
    )
    shots = sorted({int(c["shots"]) for c in grid})
    present = {column_key(c) for c in grid}
    grid_keys = [(su, sp, k) for su in suites for sp in splits for k in shots if (su, sp, k) in present]
    return [*labels, *grid_keys]


def format_cell(cell: Mapping[str, Any] | None) -> str:
    if cell is None:
        return MISSING
    digits = 2 if cell.get("score") == "completed_subtasks" else 3
    mean, se = cell["mean"], cell.get("stderr")
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if se is not None else f"{mean:.{digits}f}"


def render_table(
    entries: Sequence[tuple[str, Cells]],
    title: str,
    entry_header: str = "Method",
    columns: Sequence[ColumnKey] | None = None,
    extra_rows: Sequence[tuple[str, Sequence[str]]] = (),
    footer: str | None = None,
) -> str:
    """`columns`: the where-keys to show, in order (default: every one present); `extra_rows`:
    (label, preformatted texts per column), e.g. a range row; `footer`: default says how the cells
    were measured."""
    all_cells = [c for _, cells in entries for c in cells]
    keys = list(columns) if columns is not None else _ordered_keys(all_cells)
    grid = [{column_key(c): c for c in cells} for _, cells in entries]
    texts = [[format_cell(g.get(k)) for k in keys] for g in grid]
    kitchen = bool(keys) and all(isinstance(k, str) for k in keys)
    if kitchen:  # combinations down, entries across (paper Tables 2 and 5)
        header = [KITCHEN_ROW_HEADER, *(label for label, _ in entries)]
        rows = [[column_title(k), *(t[i] for t in texts)] for i, k in enumerate(keys)]
    else:
        header = [entry_header, *(column_title(k) for k in keys)]
        rows = [[label, *t] for (label, _), t in zip(entries, texts)]
    rows += [[label, *cols] for label, cols in extra_rows]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    note = footer if footer is not None else describe(entries)
    return "\n".join([*lines, "", note]).rstrip() + "\n"


def describe(entries: Sequence[tuple[str, Cells]]) -> str:
    """How the cells were measured; one line per entry where the entries' protocols differ."""
    cells = [c for _, cs in entries for c in cs]
    if not cells:
        return "No results."
    if all(c.get("score") == "completed_subtasks" for c in cells):
        def how(cs: Cells) -> str:
            c = cs[0]
            return (f"{c['trials']} trials x {len(c['seeds'])} evaluation seed(s); {c['shots']}-shot "
                    f"adaptation; horizon {c['horizon']}")  # fmt: skip

        per_entry = {label: how(cs) for label, cs in entries if cs}
        text = "Completed sub-tasks (of 4), mean ± standard error over"
        if len(set(per_entry.values())) == 1:
            return f"{text} {next(iter(per_entry.values()))}."
        lines = [f"- {k}: {v}" for k, v in per_entry.items()]
        return "\n".join([f"{text} the episodes of each column:", *lines])

    def values(key: str) -> str:
        return ", ".join(str(v) for v in dict.fromkeys(str(c.get(key)) for c in cells))

    seeds = dict.fromkeys(len(c.get("seeds", [])) for c in cells)
    return (
        f"Success rate, mean ± standard error over {', '.join(map(str, seeds))} evaluation seed(s); "
        f"protocol {values('protocol')} (horizon {values('horizon')}), {values('trials')} trials per task "
        f"and seed; checkpoint {values('checkpoint')}."
    )
