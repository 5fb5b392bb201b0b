"""Argument types of the `dmil` commands: a bad value is refused by argparse (exit 2, one line saying
which argument and why) before any work starts."""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Callable


def _number(kind: type, minimum: float, strict: bool) -> Callable[[str], int | float]:
    word = ">" if strict else ">="

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None  # fmt: skip
        if not (value > minimum if strict else value >= minimum) or value != value:  # NaN fails both
            raise argparse.ArgumentTypeError(f"must be {word} {minimum:g}, got {text}")
        return value

    return parse


positive_int = _number(int, 1, strict=False)
non_negative_int = _number(int, 0, strict=False)
positive_float = _number(float, 0.0, strict=True)
non_negative_float = _number(float, 0.0, strict=False)


def names(text: str) -> list[str]:
    """'a, b' -> ['a', 'b']; empty items are dropped, nothing at all is refused."""
    out = [x.strip() for x in text.split(",") if x.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected a comma-separated list, got nothing")
    return out


def positive_ints(text: str) -> list[int]:
    """'1,3' -> [1, 3]: distinct integers >= 1."""
    try:
        values = [int(x) for x in names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"every value must be >= 1, got {text}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"values repeat in {text}")
    return values


_SEED_PART = re.compile(r"^(\d+)(?:-(\d+))?$")


def seed_set(text: str) -> tuple[int, ...]:
    """Evaluation seeds: a count N (seeds 0..N-1), a range '100-102', a list '0,5,7', or a mix of ranges
    and single seeds ('0-2,9'). Seeds are >= 0 and distinct; a range runs upwards."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("expected a count, a range (100-102) or a list (0,5,7), got nothing")
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise argparse.ArgumentTypeError(f"a count of seeds must be >= 1, got {text}")
        return tuple(range(count))
    seeds: list[int] = []
    for part in text.split(","):
        m = _SEED_PART.match(part.strip())
        if m is None:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} in {text!r} is neither a seed (>= 0) nor a range like 100-102"
            )
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if hi < lo:
            raise argparse.ArgumentTypeError(f"range {part.strip()} runs downwards; write {hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    repeated = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if repeated:
        raise argparse.ArgumentTypeError(f"seed(s) {', '.join(map(str, repeated))} repeat in {text!r}")
    return tuple(seeds)
