"""Weight files: self-describing round trips, safe and atomic writes, strict loading with one-line errors."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import nrp.checkpoints
from nrp.checkpoints import Checkpoint, load_weights, read_checkpoint, write_checkpoint
from nrp.errors import CheckpointError


def small_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


# --- round trips --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".pt"])
def test_round_trip_keeps_tensors_architecture_and_arguments(tmp_path, suffix):
    state = small_network().state_dict()
    path = tmp_path / f"w{suffix}"
    write_checkpoint(Checkpoint(state, "nrp", {"width": 8, "blocks": 1, "growth": 4}), path)
    checkpoint = read_checkpoint(path)
    assert_same_tensors(checkpoint.state_dict, state)
    assert checkpoint.architecture == "nrp"
    assert checkpoint.arguments == {"width": 8, "blocks": 1, "growth": 4}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_checkpoint_without_architecture_reads_back_as_none(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    write_checkpoint(Checkpoint(small_network().state_dict()), path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.architecture is None
    assert checkpoint.arguments == {}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_parameters_that_need_grad_and_non_contiguous_tensors_are_written(tmp_path, suffix):
    weight = nn.Parameter(torch.arange(12.0).reshape(3, 4))
    state = {"weight": weight, "transposed": torch.arange(6.0).reshape(2, 3).t()}
    path = tmp_path / f"w{suffix}"
    write_checkpoint(Checkpoint(state, "x"), path)
    read = read_checkpoint(path).state_dict
    assert torch.equal(read["weight"], weight.detach())
    assert torch.equal(read["transposed"], state["transposed"])
    assert not read["weight"].requires_grad


def test_pth_stores_extra_training_state_beside_the_weights(tmp_path):
    network = small_network()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-4)
    network(torch.rand(1, 3, 5, 5)).sum().backward()
    optimiser.step()
    extra = {"optimizer": optimiser.state_dict(), "step": 1234, "rng": torch.get_rng_state()}
    path = tmp_path / "run.pth"
    write_checkpoint(Checkpoint(network.state_dict(), "nrp", {"width": 8}), path, extra=extra)
    payload = torch.load(path, weights_only=True)
    assert payload["step"] == 1234
    assert torch.equal(payload["rng"], extra["rng"])
    assert payload["optimizer"]["param_groups"][0]["lr"] == 1e-4
    checkpoint = read_checkpoint(path)
    assert (checkpoint.architecture, checkpoint.arguments) == ("nrp", {"width": 8})
    assert_same_tensors(checkpoint.state_dict, network.state_dict())  # the extra tensors stay out


def test_safetensors_refuses_extra_and_leaves_the_folder_as_it_was(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"previous")
    with pytest.raises(CheckpointError) as error:
        write_checkpoint(Checkpoint(small_network().state_dict(), "nrp"), path, extra={"step": 1})
    message = one_line(error)
    assert str(path) in message and ".pth" in message
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_safetensors_metadata_is_plain_strings(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "w.safetensors"
    write_checkpoint(Checkpoint(small_network().state_dict(), "nrp_resg", {"width": 8, "blocks": 2}), path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["architecture"] == "nrp_resg"
    assert json.loads(metadata["arguments"]) == {"width": 8, "blocks": 2}


def test_written_file_gets_ordinary_permissions(tmp_path):
    path = tmp_path / "deep" / "w.pth"
    write_checkpoint(Checkpoint(small_network().state_dict()), path)
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


# --- atomic writes ------------------------------------------------------------------------------------


def failing_midway(*args, **kwargs):
    """Write some bytes where the real writer would, then fail like a full disk."""
    target = args[1]
    with open(target, "wb") as handle:
        handle.write(b"PK\x03\x04 partial")
    raise OSError(28, "No space left on device")


def test_failed_pth_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    write_checkpoint(Checkpoint(small_network().state_dict(), "a"), path)
    before = path.read_bytes()
    monkeypatch.setattr(nrp.checkpoints.torch, "save", failing_midway)
    with pytest.raises(OSError):
        write_checkpoint(Checkpoint({"other": torch.zeros(2)}, "b"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.pth"]


def test_failed_safetensors_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    write_checkpoint(Checkpoint(small_network().state_dict(), "a"), path)
    before = path.read_bytes()
    monkeypatch.setattr(nrp.checkpoints, "save_file", failing_midway)
    with pytest.raises(OSError):
        write_checkpoint(Checkpoint({"other": torch.zeros(2)}, "b"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


# --- reading ------------------------------------------------------------------------------------------


def test_module_prefix_is_removed_only_when_every_key_has_it(tmp_path):
    torch.save({"module.a": torch.zeros(1), "module.b": torch.ones(1)}, tmp_path / "dp.pth")
    assert set(read_checkpoint(tmp_path / "dp.pth").state_dict) == {"a", "b"}
    torch.save({"module.a": torch.zeros(1), "b": torch.ones(1)}, tmp_path / "mixed.pth")
    assert set(read_checkpoint(tmp_path / "mixed.pth").state_dict) == {"module.a", "b"}


def test_non_tensor_entries_of_a_state_dict_are_dropped(tmp_path):
    torch.save({"w": torch.ones(2), "iteration": 7, "note": "x"}, tmp_path / "w.pth")
    assert set(read_checkpoint(tmp_path / "w.pth").state_dict) == {"w"}


def test_bad_arguments_metadata_is_reported(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={"architecture": "nrp", "arguments": "{not json"})
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    message = one_line(error)
    assert str(path) in message and "arguments" in message and "JSON" in message


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(tmp_path / "nope.safetensors")
    assert "not found" in one_line(error) and "nope.safetensors" in str(error.value)


def test_folder_is_not_a_weights_file(tmp_path):
    (tmp_path / "dir.pth").mkdir()
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "dir.pth")


# --- load_weights -------------------------------------------------------------------------------------


def test_load_weights_copies_a_fitting_state_dict():
    source, target = small_network(), nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))
    load_weights(target, source.state_dict(), source="a.pth")
    assert_same_tensors(target.state_dict(), source.state_dict())


def test_load_weights_reports_every_kind_of_misfit_in_one_line():
    network = small_network()
    state = dict(network.state_dict())
    del state["0.bias"]
    state["3.weight"] = torch.zeros(1)
    state["2.weight"] = torch.zeros(2, 4, 3, 3)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    with pytest.raises(CheckpointError) as error:
        load_weights(network, state, source="w.pth", target="tiny(width=4)")
    message = one_line(error)
    assert message.startswith("w.pth does not fit tiny(width=4): ")
    assert "1 missing keys (0.bias)" in message
    assert "1 unexpected keys (3.weight)" in message
    assert "1 shape mismatches (2.weight (file (2, 4, 3, 3), network (2, 4, 1, 1)))" in message
    assert_same_tensors(network.state_dict(), before)  # nothing was half-loaded


def test_load_weights_names_the_class_by_default_and_summarises_long_lists():
    network = nn.Sequential(*(nn.Linear(2, 2) for _ in range(5)))
    with pytest.raises(CheckpointError) as error:
        load_weights(network, {"only": torch.zeros(1)}, source="w.pth")
    message = one_line(error)
    assert "does not fit Sequential" in message
    assert "10 missing keys (0.weight, 0.bias, 1.weight and 7 more)" in message


def test_load_weights_ignores_the_keys_it_is_told_to():
    network = nn.Linear(2, 2)
    state = dict(network.state_dict())
    state["head.weight"] = torch.zeros(3)
    load_weights(network, state, source="w.pth", ignore={"head.weight"})
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_weights(network, state, source="w.pth")
