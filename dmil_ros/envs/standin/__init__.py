"""The robot stand-in's ROS-free parts: what a real cell answers to the hardware graph.

servo.py       MoveIt Servo's twist pipeline (stale commands, frames, units, singularity, limits)
arm.py         a Meta-World scene whose Sawyer is driven through its joints (Jacobian, joint-space
               control in MuJoCo physics, no mocap weld), its gripper, and the task's success
perception.py  object poses as a camera delivers them: its own rate, latency and Gaussian noise
The ROS node (dmil_ros/ros/robot_standin.py) only moves messages in and out of these.
"""
