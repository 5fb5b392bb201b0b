"""Markdown tables shaped like the paper's Table 1 (and Tables 3 and 6 for the ablations).

Columns: suite x {meta-training, meta-testing} x {k-shot}; rows: methods (or ablation values);
cells: mean success ± standard error over evaluation seeds. Built from the cell JSON dicts that
`dmil eval --json/--out` emits, so tables can be re-rendered from saved results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SPLIT_NAMES = {"train": "meta-training", "test": "meta-testing"}
SUITE_NAMES = {"ml10": "ML10", "ml10-dmil": "ML10 (DMIL split)", "ml45": "ML45", "custom": "custom"}


def _columns(cells: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    suites = list(dict.fromkeys(c["suite"] for c in cells))
    splits = sorted(
        {c["split"] for c in cells},
        key=lambda s: (list(SPLIT_NAMES).index(s) if s in SPLIT_NAMES else len(SPLIT_NAMES), s),
    )
    shots = sorted({int(c["shots"]) for c in cells})
    present = {(c["suite"], c["split"], int(c["shots"])) for c in cells}
    return [(su, sp, k) for su in suites for sp in splits for k in shots if (su, sp, k) in present]


def format_cell(cell: Mapping[str, Any] | None, digits: int = 3) -> str:
    if cell is None:
        return "–"
    mean, se = cell["mean_success"], cell.get("stderr")
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if se is not None else f"{mean:.{digits}f}"


def render_table(
    rows: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    title: str,
    row_header: str = "Method",
    extra_rows: Sequence[tuple[str, Sequence[str]]] = (),
) -> str:
    """`rows`: (label, cell dicts); `extra_rows`: (label, preformatted column texts), e.g. a range row."""
    all_cells = [c for _, cells in rows for c in cells]
    cols = _columns(all_cells)
    header = [row_header] + [
        f"{SUITE_NAMES.get(su, su)} {SPLIT_NAMES.get(sp, sp)} {k}-shot" for su, sp, k in cols
    ]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, cells in rows:
        by_col = {(c["suite"], c["split"], int(c["shots"])): c for c in cells}
        lines.append("| " + " | ".join([label] + [format_cell(by_col.get(col)) for col in cols]) + " |")
    for label, texts in extra_rows:
        lines.append("| " + " | ".join([label, *texts]) + " |")
    lines.append("")
    lines.append(_footer(all_cells))
    return "\n".join(lines) + "\n"


def column_keys(rows: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[tuple[str, str, int]]:
    return _columns([c for _, cells in rows for c in cells])


def _footer(cells: Sequence[Mapping[str, Any]]) -> str:
    def values(key: str) -> str:
        return ", ".join(str(v) for v in dict.fromkeys(str(c.get(key)) for c in cells))

    seeds = dict.fromkeys(len(c.get("seeds", [])) for c in cells)
    return (
        f"Success rate, mean ± standard error over {', '.join(map(str, seeds))} evaluation seed(s); "
        f"protocol {values('protocol')} (horizon {values('horizon')}), {values('trials')} trials per task "
        f"and seed; checkpoint {values('checkpoint')}."
    )
