"""`dmil plot`: paper figures for one task from a checkpoint, as PNG files (and an optional GIF).

  skills_<task>.png   sub-skill probabilities over time along a held-out demo, before and after
                      k-shot adaptation (paper Fig. 3)
  tsne_<task>.png     t-SNE of the states of held-out demos coloured by sub-skill, before and after
                      adaptation (paper Fig. 4)
  rollout_<task>.gif  with --video: one episode of the adapted policy (MuJoCo offscreen rendering;
                      headless machines need MUJOCO_GL=egl or MUJOCO_GL=osmesa; skipped if unavailable),
                      and rollout_<task>.png, its last frame

Demos come from the evaluation demo pool (the same held-out demos `dmil eval` adapts on, collected
on first use): the first --shots are adapted on, the next --tsne-demos are plotted.

Examples:
  dmil plot --task peg-insert-side-v3 --out plots/
  dmil plot --checkpoint runs/ml10/best --task door-close-v3 --shots 1 --video --out plots/
  dmil plot --env kitchen --out plots/          # Fig. 3 right: microwave+kettle+top_burner+light_switch
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dmil_ros.arguments import positive_int
from dmil_ros.torch_threads import add_torch_threads_argument, check_torch_threads, use_torch_threads

if "mujoco" not in sys.modules and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless default; must precede the mujoco import


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dmil plot",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", choices=["metaworld", "kitchen"], default="metaworld",
                   help="kitchen: paper Fig. 3 right (default metaworld)")  # fmt: skip
    p.add_argument("--checkpoint", help="checkpoint or run directory (default: the shipped one; kitchen: "
                   "the one trained without the task's excluded object)")  # fmt: skip
    p.add_argument(
        "--task", default=None,
        help="task (default peg-insert-side-v3; kitchen microwave+kettle+top_burner+light_switch)",
    )  # fmt: skip
    p.add_argument("--shots", type=positive_int, default=3, help="demos adapted on (default 3)")
    p.add_argument("--tsne-demos", type=positive_int, default=None,
                   help="held-out demos in the t-SNE (default 8; kitchen 6)")  # fmt: skip
    p.add_argument(
        "--protocol",
        choices=["official", "farama"],
        default="official",
        help="demo pool and rollout horizon: official 300 / farama 500 steps (default official)",
    )
    p.add_argument("--pool", help="demo pool HDF5 (default: the evaluation pool of --protocol)")
    p.add_argument("--seed", type=int, default=0, help="t-SNE and rollout seed")
    p.add_argument("--video", action="store_true", help="also render a rollout GIF of the adapted policy")
    p.add_argument("--out", default="plots", help="output directory (default plots/)")
    add_torch_threads_argument(p, "the adaptation")
    p.add_argument("--json", action="store_true", help="print the written files as JSON on the last line")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_torch_threads(parser, args.torch_threads)
    use_torch_threads(args.torch_threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from dmil_ros.core.checkpoint import CheckpointError
    from dmil_ros.core.data import DemoError

    try:
        files = _plot(args)
    except (CheckpointError, FileNotFoundError, DemoError, ValueError) as e:
        print(f"dmil plot: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({k: str(v) if v else None for k, v in files.items()}))
    else:
        for kind, path in files.items():
            print(f"{kind}: {path if path else 'skipped'}")
    return 0


def _plot(args: argparse.Namespace) -> dict[str, Path | None]:
    import numpy as np

    from dmil_ros.data.demos import to_core
    from dmil_ros.envs.kitchen_tasks import UNSEEN
    from dmil_ros.evaluation.policies import kitchen_policies, load_policy, resolve_policy
    from dmil_ros.evaluation.pool import load_pool
    from dmil_ros.evaluation.protocol import horizon_for
    from dmil_ros.plotting.skills import plot_skill_probabilities
    from dmil_ros.plotting.tsne import plot_tsne

    kitchen = args.env == "kitchen"
    args.tsne_demos = args.tsne_demos or (6 if kitchen else 8)
    n = args.shots + args.tsne_demos
    protocol = "kitchen" if kitchen else args.protocol
    horizon = horizon_for(protocol)
    if kitchen:
        args.task = args.task or UNSEEN[0].task
        if args.video:
            raise ValueError("--video renders Meta-World only")
        if args.checkpoint is not None:
            resolved = load_policy(args.checkpoint)
        else:  # the shipped hierarchy trained without this combination's excluded object
            combo = next((c for c in UNSEEN if c.task == args.task), None)
            if combo is None:
                raise ValueError(f"{args.task} is not one of the unseen combinations; pass --checkpoint")
            resolved = kitchen_policies(None, None, (combo,))[combo.excluded]
    else:
        args.task = args.task or "peg-insert-side-v3"
        resolved = resolve_policy(None, args.checkpoint)
    pool = load_pool(args.pool, [args.task], n, horizon, env=args.env)
    if resolved.policy is None:
        raise ValueError("plotting needs a learned hierarchy")
    demos = to_core(pool[args.task])
    support, held_out = demos[: args.shots], demos[args.shots : n]
    adapted = resolved.method.adapt(resolved.policy, support, seed=args.seed).policy
    assert adapted is not None
    panels = [("before adaptation", resolved.policy), (f"after {args.shots}-shot adaptation", adapted)]
    out = Path(args.out)
    files: dict[str, Path | None] = {}
    files["skills"] = plot_skill_probabilities(
        panels, held_out[0].observations, out / f"skills_{args.task}.png",
        f"{args.task}: sub-skill probabilities along a held-out demo ({resolved.method.name})",
    )  # fmt: skip
    states = np.concatenate([d.observations for d in held_out])
    files["tsne"] = plot_tsne(
        panels, states, out / f"tsne_{args.task}.png",
        f"{args.task}: t-SNE of {len(held_out)} held-out demos by sub-skill", seed=args.seed,
    )  # fmt: skip
    if args.video:
        from dmil_ros.plotting.video import render_rollout

        files["video"] = render_rollout(
            adapted, args.task, args.seed, out / f"rollout_{args.task}.gif", horizon
        )
    return files


if __name__ == "__main__":
    sys.exit(main())
