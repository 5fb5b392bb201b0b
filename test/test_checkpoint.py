"""Checkpoints round-trip through safetensors + JSON and fail loudly, without damage, when wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dmil_ros.core import checkpoint as ckpt
from dmil_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dmil_ros.core.config import ModelConfig, make_dmil_config
from dmil_ros.core.data import Normalizer
from dmil_ros.core.hierarchy import Hierarchy


@pytest.fixture
def saved(tmp_path):
    norm = Normalizer(np.arange(4, dtype=np.float32), np.full(4, 2.0, np.float32))
    h = Hierarchy.initialize(ModelConfig(4, 2, 3, (8,)), seed=1, normalizer=norm)
    save_checkpoint(h, tmp_path / "ck", make_dmil_config("dmil-soft"), meta={"iterations": 7})
    return h, tmp_path / "ck"


def test_round_trip(saved):
    h, path = saved
    loaded, dmil_cfg, meta = load_checkpoint(path)
    assert loaded.config == h.config
    assert dmil_cfg == make_dmil_config("dmil-soft")
    assert meta == {"iterations": 7}
    for k, v in h.params.items():
        assert torch.equal(loaded.params[k], v)
    np.testing.assert_array_equal(loaded.normalizer.mean, h.normalizer.mean)
    obs = np.ones(4, np.float32)
    np.testing.assert_allclose(loaded.act(obs)[0], h.act(obs)[0])


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_checkpoint(tmp_path / "nope")


def test_corrupt_weights(saved):
    _, path = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(path)


def test_corrupt_config(saved):
    _, path = saved
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)


def test_config_weights_mismatch(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["model"]["hidden_sizes"] = [16]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="has shape"):
        load_checkpoint(path)
    config["model"]["num_skills"] = 5
    config["model"]["hidden_sizes"] = [8, 8]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_checkpoint(path)


def test_failed_save_leaves_previous_checkpoint_intact(saved, monkeypatch):
    h, path = saved
    before = (path / "model.safetensors").read_bytes()

    def broken_save(tensors, filename):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", broken_save)
    other = Hierarchy.initialize(h.config, seed=99)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(other, path)
    assert (path / "model.safetensors").read_bytes() == before
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]
    load_checkpoint(path)


class _Payload:
    """Unpickling this would create `marker`: how a malicious checkpoint runs code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_unpickles(saved, tmp_path):
    _, path = saved
    assert (path / "model.safetensors").read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle stream
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    # A torch.save'd file whose unpickling would write a marker, in place of the weights.
    marker = tmp_path / "unpickled"
    torch.save({"high.0.weight": _Payload(marker)}, path / "model.safetensors")
    assert (path / "model.safetensors").read_bytes()[:2] == b"PK"  # torch's zip of a pickle
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(path)
    assert not marker.exists()
    # The same file under a pickle-ish name beside a valid config is not looked at either.
    torch.save(_Payload(marker), path / "model.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path / "model.pt", weights_only=False)  # the payload works: unpickling runs it
    assert marker.exists()


def test_saved_files_are_readable_by_others(saved):
    _, path = saved
    for f in path.iterdir():
        assert f.stat().st_mode & 0o044 == 0o044, f"{f.name} is not world/group readable"
