"""ament_python package setup: works with `colcon build` and with a plain `pip install`."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dmil_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench"]),
    include_package_data=True,
    # checkpoints/metaworld_ml10/*, checkpoints/metaworld_ml45/* and checkpoints/kitchen/no_<object>/*
    package_data={
        PACKAGE: [f"checkpoints/{d}*.{ext}" for d in ("*/", "*/*/") for ext in ("json", "safetensors")]
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=["numpy", "torch>=2.4", "safetensors", "pyyaml", "tqdm", "tensorboard"],
    extras_require={
        "sim": ["metaworld==3.1.1", "mujoco", "gymnasium-robotics", "h5py"],
        "ros": ["mcap", "mcap-ros2-support", "scipy"],
        "plot": ["matplotlib", "scikit-learn"],
        "test": ["pytest", "pytest-timeout", "hypothesis", "import-linter", "ruff"],
    },
    zip_safe=True,
    maintainer="dmil_ros developers",
    maintainer_email="dmil-ros@example.com",
    description="Dual Meta Imitation Learning: sub-skill hierarchies adapted on the robot through ROS 2",
    license="MIT",
    entry_points={
        "console_scripts": [
            "dmil = dmil_ros.cli:main",
            "sim_bridge = dmil_ros.ros.entry:sim_bridge",
            "policy_node = dmil_ros.ros.entry:policy_node",
            "demo_recorder = dmil_ros.ros.entry:demo_recorder",
            "scripted_teleop = dmil_ros.ros.entry:scripted_teleop",
            "robot_standin = dmil_ros.ros.entry:robot_standin",
        ],
    },
)
