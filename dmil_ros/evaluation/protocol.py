"""Evaluation protocols: the episode horizon is the only difference, and every report names it.

official: the DMIL code's 300-step episodes (what the paper's tables use).
farama:   Meta-World's own (Farama Foundation) 500-step `max_path_length`.
"""

from __future__ import annotations

PROTOCOLS: dict[str, int] = {"official": 300, "farama": 500}


def horizon_for(protocol: str, override: int | None = None) -> int:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if override is not None and override < 1:
        raise ValueError(f"horizon must be >= 1, got {override}")
    return override if override is not None else PROTOCOLS[protocol]
