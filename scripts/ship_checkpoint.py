"""Copy a checkpoint of a training run (best, last or a snapshot) into the package as the shipped hierarchy.

    .venv/bin/python scripts/ship_checkpoint.py runs/ml10-k3 --recipe config/train_ml10.yaml \
        --out dmil_ros/checkpoints/metaworld_ml10
    .venv/bin/python scripts/ship_checkpoint.py runs/ml45 --from snapshots/it2000 \
        --recipe config/train_ml45.yaml --out dmil_ros/checkpoints/metaworld_ml45
    .venv/bin/python scripts/ship_checkpoint.py runs/kitchen-k4/no_kettle --recipe config/train_kitchen.yaml \
        --out dmil_ros/checkpoints/kitchen/no_kettle --normalizer-min-std 0.1

The weights are copied unchanged; the adaptation settings (`dmil.adapt`) are taken from the recipe,
so a run that validated with other settings ships with the recipe's deployment adaptation.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from dmil_ros.core.checkpoint import load_checkpoint, save_checkpoint
from dmil_ros.core.shipped import config_path
from dmil_ros.training.config import load_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="training run directory")
    p.add_argument("--from", dest="which", default="best",
                   help="checkpoint inside the run: best (lowest validation MSE; ML10, kitchen), last, or "
                   "snapshots/it<N> (ML45, whose iteration count was chosen by closed-loop validation)")
    p.add_argument("--recipe", type=Path, default=Path("config/train_ml10.yaml"))
    p.add_argument("--out", type=Path, required=True, help="e.g. dmil_ros/checkpoints/<name>")
    p.add_argument("--normalizer-min-std", type=float, default=None,
                   help="raise the normaliser's std floor (runs trained before data.normalizer_min_std)")
    args = p.parse_args()
    source = args.run / args.which
    hierarchy, dmil_cfg, meta = load_checkpoint(source)
    if args.normalizer_min_std is not None:
        floored = hierarchy.normalizer.with_min_std(args.normalizer_min_std)
        hierarchy = dataclasses.replace(hierarchy, normalizer=floored)
        meta = {**meta, "normalizer_min_std": args.normalizer_min_std}
    recipe = load_config(config_path(args.recipe))
    if dmil_cfg is None:
        raise SystemExit(f"{source} has no DMIL config")
    dmil_cfg = dataclasses.replace(dmil_cfg, adapt=recipe.dmil.adapt)
    meta = {**meta, "source_run": str(args.run), "adapt_from": str(args.recipe)}
    save_checkpoint(hierarchy, args.out, dmil_cfg, meta)
    print(f"shipped {source} (iteration {meta.get('iteration')}) -> {args.out}")


if __name__ == "__main__":
    main()
