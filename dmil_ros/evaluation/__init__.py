"""Few-shot evaluation on Meta-World: demo pools, seeded rollouts, Table-1-style reports, ablations."""
