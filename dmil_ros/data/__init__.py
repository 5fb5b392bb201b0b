"""Demonstrations: scripted-expert collection and the HDF5 on-disk format (ROS-free)."""

from dmil_ros.data.hdf5_dataset import (
    CorruptDatasetError,
    DemoWriter,
    RecordedDemo,
    load_demos,
    read_env_args,
    salvage_demos,
    write_mask,
)

__all__ = [
    "CorruptDatasetError",
    "DemoWriter",
    "RecordedDemo",
    "load_demos",
    "read_env_args",
    "salvage_demos",
    "write_mask",
]
