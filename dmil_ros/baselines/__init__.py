"""Baselines (MIL, multi-task BC, BC from scratch, the scripted expert) and the method registry that
puts them and the DMIL variants behind one interface."""
