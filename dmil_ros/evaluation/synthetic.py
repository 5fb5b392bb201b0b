"""End-to-end check of DMIL on the synthetic benchmark (core/synthetic.py): meta-train with the
`Trainer` that `dmil train` uses, adapt on 1 demo, measure.

Reports, averaged over held-out tasks: segmentation accuracy of the adapted high level against the
true sub-skill labels, and held-out action MSE of the adapted hierarchy, of the meta-trained but
un-adapted hierarchy, and of a monolithic BC policy trained from scratch on the same single demo.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from dmil_ros.core import synthetic
from dmil_ros.core.adaptation import adapt
from dmil_ros.core.bc import action_mse, new_bc_policy, train_bc
from dmil_ros.core.config import DMILConfig, ModelConfig, make_dmil_config
from dmil_ros.core.data import Demo, concat_demos
from dmil_ros.methods.registry import make_method
from dmil_ros.training.trainer import Trainer


@dataclass(frozen=True)
class SyntheticSettings:
    seed: int = 0
    demos_per_task: int = 20
    test_rollouts: int = 20
    iterations: int = 1000
    hidden_sizes: tuple[int, ...] = (64, 64)
    num_skills: int = 3
    bc_steps: int = 500
    # Extra draws of (adaptation demo, test rollouts) per held-out task, for the spread of the
    # result over which single demo the model adapts on; draw 0 is the headline result.
    extra_draws: int = 0


def synthetic_dmil_config() -> DMILConfig:
    """Learning rates and schedule for this small problem (Table 9's are tuned for 512-unit nets).

    The high level gets a large inner step: its meta-initialisation cannot know which controller a
    task uses in which band, so only its adapted version can route well. The sub-skills start from a
    hard-EM mixture fit on the pooled demos (core/warm_start.py) and are held for the first half of
    meta-training while the high level learns to adapt; without that, hard EM settles on compromise
    sub-skills that each fit parts of several controllers (4 of 4 seeds). At adaptation the high
    level moves fast (lr 0.2) and the sub-skills slowly (0.005), so one demo re-routes clean
    sub-skills instead of re-fitting them to its few states.
    """
    return make_dmil_config(
        "dmil",
        inner_lr_high=1.0,
        inner_lr_low=0.01,
        outer_lr=2e-3,
        tasks_per_batch=8,
        windows_per_batch=8,
        window_length=8,
        skill_warm_start_steps=2000,
        skill_warm_start_restarts=4,
        high_first_iterations=500,
        adapt={"steps": 30, "lr": 0.005, "lr_high": 0.2},
    )


def run(settings: SyntheticSettings | None = None, dmil_cfg: DMILConfig | None = None) -> dict[str, float]:
    s = settings or SyntheticSettings()
    cfg = dmil_cfg or synthetic_dmil_config()
    t0 = time.perf_counter()
    rng = np.random.default_rng(s.seed)
    train_tasks, held_out = synthetic.make_tasks(s.seed)
    demos = {t.name: [synthetic.rollout(t, rng)[0] for _ in range(s.demos_per_task)] for t in train_tasks}
    model_cfg = ModelConfig(synthetic.OBS_DIM, synthetic.ACTION_DIM, s.num_skills, s.hidden_sizes)
    trainer = Trainer(make_method("dmil", cfg), model_cfg, demos, seed=s.seed)
    trainer.run(s.iterations)
    hierarchy = trainer.policy()
    train_seconds = time.perf_counter() - t0

    def one_draw(
        task: synthetic.SyntheticTask, draw_rng: np.random.Generator
    ) -> tuple[float, float, Demo, list[Demo]]:
        """(segmentation accuracy, adapted MSE, the demo, the test demos) after adapting on one fresh demo."""
        demo, _ = synthetic.rollout(task, draw_rng)
        tests = [synthetic.rollout(task, draw_rng) for _ in range(s.test_rollouts)]
        test_demos = [d for d, _ in tests]
        truth = np.concatenate([labels for _, labels in tests])
        result = adapt(hierarchy, [demo], cfg.adapt)
        obs, _, _ = concat_demos(test_demos)
        _, predicted, _ = result.hierarchy.predict(obs)
        seg = synthetic.segmentation_accuracy(predicted, truth, s.num_skills)
        return seg, action_mse(result.hierarchy, test_demos), demo, test_demos

    seg, adapted, unadapted, scratch = [], [], [], []
    for i, task in enumerate(held_out):
        accuracy, mse, demo, test_demos = one_draw(task, rng)
        seg.append(accuracy)
        adapted.append(mse)
        unadapted.append(action_mse(hierarchy, test_demos))
        bc = new_bc_policy(
            model_cfg.obs_dim, model_cfg.action_dim, s.hidden_sizes, hierarchy.normalizer, s.seed + i
        )
        bc, _ = train_bc(bc, [demo], s.bc_steps, lr=1e-3, seed=s.seed + i)
        scratch.append(action_mse(bc, test_demos))
    spread = {}
    if s.extra_draws > 0:
        draw_rng = np.random.default_rng([s.seed, 1])  # independent of the headline draw's stream
        draws = [[one_draw(task, draw_rng)[:2] for task in held_out] for _ in range(s.extra_draws)]
        per_draw = [float(np.mean(seg))] + [float(np.mean([a for a, _ in d])) for d in draws]
        spread = {
            "over_draws": {
                "draws": len(per_draw),
                "segmentation_accuracy_mean": float(np.mean(per_draw)),
                "segmentation_accuracy_min": float(np.min(per_draw)),
                "segmentation_accuracy_per_draw": per_draw,
                "adapted_mse_mean": float(
                    np.mean([np.mean(adapted), *(np.mean([m for _, m in d]) for d in draws)])
                ),
            }
        }
    return {
        "segmentation_accuracy": float(np.mean(seg)),
        "adapted_mse": float(np.mean(adapted)),
        "unadapted_mse": float(np.mean(unadapted)),
        "bc_scratch_mse": float(np.mean(scratch)),
        "per_task": {
            t.name: {"segmentation_accuracy": a, "adapted_mse": b, "unadapted_mse": c, "bc_scratch_mse": d}
            for t, a, b, c, d in zip(held_out, seg, adapted, unadapted, scratch)
        },
        "held_out_tasks": len(held_out),
        "train_tasks": len(train_tasks),
        "iterations": s.iterations,
        "train_seconds": round(train_seconds, 2),
        "total_seconds": round(time.perf_counter() - t0, 2),
        "settings": asdict(s),
        "adapt": asdict(cfg.adapt),
        **spread,
    }
