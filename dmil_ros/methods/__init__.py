"""DMIL (and its paper variants) and the baselines (MIL, multi-task BC, BC from scratch, the scripted
expert) behind one registry (`registry.py`): how each is meta-/pre-trained, one step at a time
(`Method.make_trainer`, data-parallel in `distributed.py`), and how it adapts to a task from k demos
(`Method.adapt`). Depends on `core` only."""
