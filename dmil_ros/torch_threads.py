"""The `--torch-threads` option shared by the off-robot commands that run small networks.

Default 1: the networks are small, and with another process on one of the cores a second torch
thread makes every small operation wait for the descheduled one (measured: a kitchen eval past
15 min instead of 2, `dmil synthetic` > 300 s instead of 38 s). 0 leaves torch's default.
"""

from __future__ import annotations

import argparse


def add_torch_threads_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """Add `--torch-threads` (default 1; `what` says which work the threads run)."""
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help=f"torch CPU threads for {what} (default 1: small networks, and a second thread waits "
        "whenever another process holds a core; 0: torch's default)",
    )


def check_torch_threads(parser: argparse.ArgumentParser, threads: int) -> None:
    """Refuse a negative count through `parser.error` (exit 2 with the reason)."""
    if threads < 0:
        parser.error("--torch-threads must be >= 0")


def use_torch_threads(threads: int) -> None:
    """Set torch's intra-op threads, unless 0 (torch's default)."""
    if threads:
        import torch  # here, so `--help` of the commands stays torch-free

        torch.set_num_threads(threads)
