"""Meta-World meta-training: YAML run configs, the (optionally distributed) training loop, run dirs."""
