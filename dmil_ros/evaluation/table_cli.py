"""`dmil table`: the paper's tables (1, 2, 4, 5, 6, 8) from the result files, as Markdown.

  dmil table 1                          # print Table 1 (ML10 and ML45, all four methods)
  dmil table all --results results/     # every table
  dmil table all --update docs/results.md   # rewrite the generated blocks of a document
  dmil table all --check docs/results.md    # exit 1 if a block there is not what the files give

A document holds a table between the lines `<!-- dmil table N -->` and `<!-- end dmil table N -->`;
--update replaces what is between them (and writes nothing else), --check compares. Result files:
results/<suite>_<split>_<method>.json as `dmil eval --out` writes them; missing ones are "n/a".
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from dmil_ros.evaluation.paper_tables import TABLES, build


def _block(name: str) -> re.Pattern[str]:
    n = re.escape(name)
    return re.compile(rf"(<!-- dmil table {n} -->\n)(.*?)(<!-- end dmil table {n} -->)", re.DOTALL)


def regenerate(text: str, tables: dict[str, str]) -> str:
    """`text` with every generated block of `tables` replaced."""
    for name, table in tables.items():
        text = _block(name).sub(lambda m, t=table: m[1] + t + m[3], text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="dmil table",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("table", choices=[*TABLES, "all"], help="which table")
    p.add_argument("--results", default="results", help="folder of result files (default results/)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--out", help="write the table(s) to this file")
    what.add_argument("--update", metavar="DOC", help="rewrite the generated blocks in this Markdown file")
    what.add_argument("--check", metavar="DOC", help="exit 1 if a generated block in this file is stale")
    args = p.parse_args(argv)
    if not Path(args.results).is_dir():
        p.error(f"--results {args.results} is not a folder")
    names = list(TABLES) if args.table == "all" else [args.table]
    tables = {n: build(n, args.results) for n in names}
    doc = args.update or args.check
    if doc is None:
        text = "\n".join(tables.values())
        if args.out:
            Path(args.out).write_text(text)
        else:
            print(text, end="")
        return 0
    try:
        old = Path(doc).read_text()
    except OSError as e:
        p.error(f"{doc}: {e.strerror}")
    present = [n for n in names if _block(n).search(old)]
    if not present:
        p.error(f"{doc} has no generated block (<!-- dmil table N --> ... <!-- end dmil table N -->)")
    new = regenerate(old, {n: tables[n] for n in present})
    if args.check:
        stale = [n for n in present if _block(n).search(old)[2] != tables[n]]  # type: ignore[index]
        if stale:
            print(f"dmil table: {doc}: table(s) {', '.join(stale)} differ from the result files; "
                  f"run `dmil table all --update {doc}`", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    if new != old:
        Path(doc).write_text(new)
    print(f"dmil table: {doc}: regenerated table(s) {', '.join(present)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
