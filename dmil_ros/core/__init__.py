"""ROS-free DMIL core: models, the meta-learning step, adaptation, data and checkpoints.

Only torch and numpy are imported here, so the same code trains off the robot and runs inside the
ROS nodes.
"""
