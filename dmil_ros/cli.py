"""`dmil`: the off-robot command line (train, eval, collect, plot, synthetic) and graph bring-up.

Each sub-command lives in its own module and is imported only when used, so `dmil --help` stays fast
and `dmil synthetic` needs neither MuJoCo nor ROS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module with `main(argv) -> int | None`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synthetic": (
        "dmil_ros.evaluation.synthetic_cli",
        "meta-train on the synthetic benchmark and report segmentation/MSE",
    ),
    "collect": ("dmil_ros.data.collect", "collect scripted-expert demonstrations into HDF5"),
    "train": ("dmil_ros.training.cli", "meta-train DMIL (or a baseline) from a YAML config"),
    "eval": ("dmil_ros.evaluation.cli", "few-shot evaluation: adapt on k demos, run seeded trials"),
    "table": ("dmil_ros.evaluation.table_cli", "the paper's tables from the result files"),
    "plot": ("dmil_ros.plotting.cli", "sub-skill activation and t-SNE figures"),
    "bringup": ("dmil_ros.ros.bringup", "start the ROS 2 node graph without `ros2 launch`"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dmil", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose one of {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    code = module.main(rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
