"""Evaluation protocols: the episode horizon is the only difference, and every report names it.

official: the DMIL code's 300-step episodes (what the paper's tables use).
farama:   Meta-World's own (Farama Foundation) 500-step `max_path_length`.
kitchen:  Franka Kitchen's 500 steps (the scripted expert needs ~400-480 for four sub-tasks; D4RL's
          280 is too short).
"""

from __future__ import annotations

PROTOCOLS: dict[str, int] = {"official": 300, "farama": 500, "kitchen": 500}
ENV_PROTOCOLS: dict[str, tuple[str, ...]] = {"metaworld": ("official", "farama"), "kitchen": ("kitchen",)}


def default_protocol(env: str) -> str:
    if env not in ENV_PROTOCOLS:
        raise ValueError(f"unknown env family {env!r}; known: {', '.join(ENV_PROTOCOLS)}")
    return ENV_PROTOCOLS[env][0]


def check_protocol(env: str, protocol: str) -> None:
    """ValueError unless `protocol` is one of `env`'s."""
    known = ENV_PROTOCOLS.get(env, ())
    if protocol not in known:
        raise ValueError(f"--env {env} has the protocol(s) {', '.join(known)}, not {protocol!r}")


def horizon_for(protocol: str, override: int | None = None) -> int:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if override is not None and override < 1:
        raise ValueError(f"horizon must be >= 1, got {override}")
    return override if override is not None else PROTOCOLS[protocol]
