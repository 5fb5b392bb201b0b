"""Figures of the paper from a checkpoint: sub-skill probabilities over time (Fig. 3), t-SNE of states
coloured by sub-skill before/after adaptation (Fig. 4), and an optional rollout video."""
