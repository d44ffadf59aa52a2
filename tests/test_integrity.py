"""Weights-file integrity (issue 17, case 4): SHA-256 of the tensors, zip CRCs, non-finite weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from nrp.checkpoints import Checkpoint, load_torch_payload, read_checkpoint, write_checkpoint
from nrp.errors import CheckpointError


def state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"conv.weight": torch.randn(64, 32, 3, 3), "conv.bias": torch.randn(64), "step": torch.tensor(3)}


def flip_bytes(path, count: int = 200, start_fraction: float = 0.5) -> None:
    """Invert ``count`` bytes in the middle of the file (inside the tensor data, away from headers)."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * start_fraction)
    for index in range(start, start + count):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def test_digest_is_a_sha256_of_paths_dtypes_shapes_and_bytes():
    import hashlib

    from nrp.integrity import tensor_digest

    tensor = torch.arange(6, dtype=torch.int16).reshape(2, 3)
    expected = hashlib.sha256(b"/w\0torch.int16\0(2, 3)\0" + tensor.numpy().tobytes()).hexdigest()
    assert tensor_digest({"w": tensor}) == expected
    # Layout does not count; a value, a dtype, a shape or a key does.
    assert tensor_digest({"w": tensor.t().contiguous().t()}) == expected
    assert tensor_digest({"w": tensor + 1}) != expected
    assert tensor_digest({"w": tensor.to(torch.int32)}) != expected
    assert tensor_digest({"w": tensor.reshape(3, 2)}) != expected
    assert tensor_digest({"v": tensor}) != expected


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_damaged_weights_files_are_refused_in_one_line(tmp_path, suffix):
    """Issue 17 case 4: 200 flipped bytes inside a checkpoint used to load with a weight off by thousands."""
    path = tmp_path / f"model{suffix}"
    write_checkpoint(Checkpoint(state(), "net", {"width": 4}), path)
    assert torch.equal(read_checkpoint(path).state_dict["conv.bias"], state()["conv.bias"])
    flip_bytes(path)
    with pytest.raises(CheckpointError, match="is damaged") as error:
        read_checkpoint(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_training_payloads_are_verified_too(tmp_path):
    path = tmp_path / "iteration_1.pth"
    write_checkpoint(Checkpoint(state(), "net", {}), path, extra={"critic": {"w": torch.randn(500, 40)}, "iteration": 1})
    payload = load_torch_payload(path)
    assert payload["iteration"] == 1 and "sha256" not in payload
    flip_bytes(path, start_fraction=0.4)
    with pytest.raises(CheckpointError, match="is damaged"):
        load_torch_payload(path)


def test_a_foreign_pth_without_digest_is_still_crc_checked(tmp_path):
    path = tmp_path / "NRP.pth"
    torch.save(state(), path)  # a plain state dict, as the authors' files are
    assert read_checkpoint(path).state_dict.keys() == state().keys()
    flip_bytes(path)
    with pytest.raises(CheckpointError, match="CRC of its member .* does not match"):
        read_checkpoint(path)


def test_a_foreign_safetensors_without_digest_is_read_unverified(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file(state(), str(path))
    assert torch.equal(read_checkpoint(path).state_dict["conv.weight"], state()["conv.weight"])


def test_a_wrong_recorded_digest_is_refused(tmp_path):
    path = tmp_path / "forged.safetensors"
    save_file(state(), str(path), metadata={"sha256": "0" * 64})
    with pytest.raises(CheckpointError, match="SHA-256 of its tensors differs"):
        read_checkpoint(path)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    """Issue 17 case 5: a purifier with an infinite bias wrote all-white images with exit code 0."""
    weights = state()
    weights["conv.bias"][7] = bad
    path = tmp_path / "bad.safetensors"
    write_checkpoint(Checkpoint(weights, "net", {}), path)
    with pytest.raises(CheckpointError, match=r"tensor conv.bias holds 1 non-finite value\(s\) \(NaN or infinity\) of 64"):
        read_checkpoint(path)
