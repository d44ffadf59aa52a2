"""Loading purifier networks from weight files: round trips, the authors' plain files, and clear errors."""

from __future__ import annotations

import os
import pathlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from nrp.errors import CheckpointError
from nrp.purifiers import NRP, NRPResG, load_network, save_network


class CodeOnLoad:
    """Unpickling this object would create ``marker``: a stand-in for a weights file that runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class ShellOnLoad:
    """Unpickling this object would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class PlainObject:
    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def error_of(path: Path, **options) -> str:
    """The message of the CheckpointError that loading ``path`` raises; it must be one line."""
    with pytest.raises(CheckpointError) as error:
        load_network(path, **options)
    message = str(error.value)
    assert message and "\n" not in message and "\r" not in message, message
    return message


@pytest.fixture(params=["nrp", "nrp_resg"])
def network(request, tiny_nrp, tiny_resg) -> nn.Module:
    return tiny_nrp if request.param == "nrp" else tiny_resg


# --- round trips --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".pt"])
def test_saved_network_loads_back_without_naming_the_architecture(tmp_path, network, images, suffix):
    path = tmp_path / f"purifier{suffix}"
    save_network(network, path)
    loaded = load_network(path)
    assert type(loaded) is type(network)
    assert not loaded.training
    assert_same_state(loaded, network)
    x = images(2, 17, 23)
    with torch.no_grad():
        assert torch.equal(loaded(x), network(x))


def test_saved_network_records_non_default_arguments(tmp_path):
    torch.manual_seed(6)
    network = NRP(width=12, blocks=2, growth=6)
    save_network(network, tmp_path / "n.safetensors")
    loaded = load_network(tmp_path / "n.safetensors", architecture="nrp")
    assert (loaded.width, loaded.blocks, loaded.growth) == (12, 2, 6)
    assert_same_state(loaded, network)


@pytest.mark.parametrize("name", ["NRP.pth", "NRP_resG.pth", "weights.pt"])
def test_plain_state_dict_loads_with_inferred_architecture(tmp_path, network, images, name):
    path = tmp_path / name
    torch.save(network.state_dict(), path)  # how the authors published NRP.pth and NRP_resG.pth
    loaded = load_network(path)
    assert type(loaded) is type(network)
    assert_same_state(loaded, network)
    x = images(1, 16, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x), network(x))


def test_plain_safetensors_state_dict_loads_with_inferred_architecture(tmp_path, network):
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    loaded = load_network(path)
    assert type(loaded) is type(network)
    assert_same_state(loaded, network)


def test_plain_default_size_nrp_state_dict_loads(tmp_path):
    network = NRP()
    torch.save(network.state_dict(), tmp_path / "NRP.pth")
    loaded = load_network(tmp_path / "NRP.pth", architecture="nrp")
    assert (loaded.width, loaded.blocks, loaded.growth) == (64, 23, 32)
    assert_same_state(loaded, network)


@pytest.mark.parametrize("key", ["state_dict", "params", "params_ema", "model"])
def test_nested_state_dict_loads(tmp_path, network, key):
    path = tmp_path / "nested.pth"
    torch.save({key: network.state_dict(), "iteration": 1000}, path)
    loaded = load_network(path)
    assert type(loaded) is type(network)
    assert_same_state(loaded, network)


def test_params_ema_is_preferred_over_params(tmp_path, tiny_nrp):
    ema = {k: v + 1.0 for k, v in tiny_nrp.state_dict().items()}
    torch.save({"params": tiny_nrp.state_dict(), "params_ema": ema}, tmp_path / "basicsr.pth")
    loaded = load_network(tmp_path / "basicsr.pth")
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, ema[key]), key


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_dataparallel_prefix_is_removed(tmp_path, network, suffix):
    state = nn.DataParallel(network).state_dict()
    assert all(key.startswith("module.") for key in state)
    path = tmp_path / f"dp{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    loaded = load_network(path)
    assert_same_state(loaded, network)


def test_matching_architecture_argument_is_accepted(tmp_path, tiny_resg):
    save_network(tiny_resg, tmp_path / "r.pth")
    assert type(load_network(tmp_path / "r.pth", architecture="nrp_resg")) is NRPResG


# --- unreadable files ---------------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent" / "NRP.pth"
    message = error_of(path)
    assert str(path) in message
    assert "not found" in message


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_pth_is_reported(tmp_path, tiny_nrp, fraction):
    path = tmp_path / "NRP.pth"
    torch.save(tiny_nrp.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    message = error_of(path)
    assert str(path) in message
    assert "not a readable PyTorch checkpoint" in message


@pytest.mark.parametrize("length", [0, 4, 20, 500, -1])
def test_truncated_safetensors_is_reported(tmp_path, tiny_nrp, length):
    path = tmp_path / "NRP.safetensors"
    save_network(tiny_nrp, path)
    data = path.read_bytes()
    path.write_bytes(data[:length])
    message = error_of(path)
    assert str(path) in message
    assert "not a readable .safetensors file" in message


def test_text_file_named_safetensors_is_reported(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_text("these are not weights\n")
    message = error_of(path)
    assert str(path) in message and "not a readable .safetensors file" in message


@pytest.mark.parametrize("text", ["", "hello world\n", "this is not a checkpoint\n", "not weights\n", "0123"])
def test_text_file_named_pth_is_reported_as_not_a_checkpoint(tmp_path, text):
    # Text reaches torch's legacy (non-zip) loader, whose weights-only unpickler fails in several ways.
    path = tmp_path / "x.pth"
    path.write_text(text)
    message = error_of(path)
    assert str(path) in message
    assert "not a readable PyTorch checkpoint" in message
    assert "code" not in message.replace(str(path), "")


@pytest.mark.parametrize("payload_class", [CodeOnLoad, ShellOnLoad])
def test_pickled_code_is_never_run(tmp_path, payload_class):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save(payload_class(marker), path)
    assert not marker.exists()
    error_of(path)
    assert not marker.exists()
    # The file really does run code when unpickled without the safe loader: the check above can fail.
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    ("payload_class", "refused"),
    # Path.touch pickles as getattr(Path, "touch"); os.system's module is on torch's blocklist, which
    # torch reports in different words from other refused globals.
    [(CodeOnLoad, "getattr"), (ShellOnLoad, f"{os.system.__module__}.system")],
)
def test_pickled_code_is_reported_as_refused_naming_the_global(tmp_path, payload_class, refused):
    path = tmp_path / "evil.pth"
    torch.save(payload_class(tmp_path / "code-ran"), path)
    message = error_of(path)
    assert str(path) in message
    assert "refused by the safe loader" in message
    assert refused in message


def test_pickled_object_is_refused_naming_its_class(tmp_path):
    path = tmp_path / "object.pth"
    torch.save(PlainObject(), path)
    message = error_of(path)
    assert str(path) in message and "refused by the safe loader" in message
    assert "PlainObject" in message
    assert "\x1b" not in message  # torch's own message carries terminal bold codes


@pytest.mark.parametrize(
    ("payload", "kind"), [([torch.zeros(1)], "list"), (torch.zeros(3), "Tensor"), ((1, 2), "tuple")]
)
def test_pth_holding_something_other_than_a_dict_is_reported(tmp_path, payload, kind):
    path = tmp_path / "other.pth"
    torch.save(payload, path)
    message = error_of(path)
    assert str(path) in message
    assert f"holds a {kind}, not a state dict" in message


def test_dict_without_tensors_is_reported(tmp_path):
    torch.save({"epoch": 3, "note": "no weights"}, tmp_path / "empty.pth")
    message = error_of(tmp_path / "empty.pth")
    assert "holds no tensors" in message


# --- files that do not fit ----------------------------------------------------------------------------


@pytest.mark.parametrize("save", ["plain", "self-describing"])
def test_nrp_file_asked_for_as_resg_says_what_it_holds(tmp_path, tiny_nrp, save):
    path = tmp_path / "NRP.pth"
    if save == "plain":
        torch.save(tiny_nrp.state_dict(), path)
    else:
        save_network(tiny_nrp, path)
    message = error_of(path, architecture="nrp_resg")
    assert str(path) in message
    assert "'nrp'" in message and "'nrp_resg'" in message


def test_resg_file_asked_for_as_nrp_says_what_it_holds(tmp_path, tiny_resg):
    path = tmp_path / "NRP_resG.safetensors"
    save_network(tiny_resg, path)
    message = error_of(path, architecture="nrp")
    assert "holds a 'nrp_resg' purifier, not 'nrp'" in message


def test_missing_extra_and_mismatched_keys_are_counted_and_named(tmp_path, tiny_nrp):
    state = dict(tiny_nrp.state_dict())
    del state["trunk_conv.bias"]
    state["extra_head.weight"] = torch.zeros(2)
    state["RRDB_trunk.0.RDB2.conv3.weight"] = torch.zeros(4, 16, 1, 1)
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    message = error_of(path)
    assert str(path) in message
    assert "1 missing keys (trunk_conv.bias)" in message
    assert "1 unexpected keys (extra_head.weight)" in message
    assert "1 shape mismatches (RRDB_trunk.0.RDB2.conv3.weight" in message
    assert "(4, 16, 1, 1)" in message and "(4, 16, 3, 3)" in message


def test_many_missing_keys_are_summarised(tmp_path, tiny_nrp):
    state = {k: v for k, v in tiny_nrp.state_dict().items() if not k.startswith("RRDB_trunk.0.RDB3")}
    torch.save(state, tmp_path / "n.pth")
    message = error_of(tmp_path / "n.pth")
    assert "10 missing keys (RRDB_trunk.0.RDB3.conv1.weight" in message
    assert "and 7 more" in message


def test_unrelated_network_without_architecture_asks_for_purifier(tmp_path):
    path = tmp_path / "classifier.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2)).state_dict(), path)
    message = error_of(path)
    assert str(path) in message
    assert "--purifier" in message


def test_unrelated_network_with_architecture_names_the_missing_keys(tmp_path):
    path = tmp_path / "classifier.pth"
    torch.save(nn.Linear(4, 2).state_dict(), path)
    message = error_of(path, architecture="nrp_resg")
    assert "missing keys (conv_first.weight" in message
    assert "2 unexpected keys (weight, bias)" in message


def test_unknown_declared_architecture_is_reported(tmp_path, tiny_nrp):
    from nrp.checkpoints import Checkpoint, write_checkpoint

    path = tmp_path / "future.safetensors"
    write_checkpoint(Checkpoint(tiny_nrp.state_dict(), "nrp_v2", {"width": 8}), path)
    message = error_of(path)
    assert "cannot build purifier 'nrp_v2'" in message


def test_save_network_refuses_an_unregistered_network(tmp_path):
    from nrp.errors import InputError

    with pytest.raises(InputError):
        save_network(nn.Conv2d(3, 3, 3), tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists()


# --- hostile weights files (issues 17 and 18) -----------------------------------------------------------


def test_a_purifier_with_an_infinite_bias_is_refused_at_load(tmp_path, tiny_nrp):
    from nrp.checkpoints import Checkpoint, write_checkpoint

    weights = {key: value.clone() for key, value in tiny_nrp.state_dict().items()}
    weights["trunk_conv.bias"][0] = float("inf")
    path = tmp_path / "inf.safetensors"
    write_checkpoint(Checkpoint(weights, "nrp", {"width": 8, "blocks": 1, "growth": 4}), path)
    assert "tensor trunk_conv.bias holds 1 non-finite value(s)" in error_of(path)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"width": -8, "blocks": 1, "growth": 4}, "argument width of 'nrp' must be an integer in [1, 4096], got -8"),
        ({"width": 8.5, "blocks": 1, "growth": 4}, "argument width of 'nrp' must be an integer in [1, 4096], got 8.5"),
        ({"width": True, "blocks": 1, "growth": 4}, "must be an integer in [1, 4096], got True"),
        ({"width": 8, "blocks": 4000, "growth": 4}, "declares blocks=4000 for 'nrp', but its tensors are of blocks=1"),
        ({"width": 4000, "blocks": 1, "growth": 4}, "declares width=4000 for 'nrp', but its tensors are of width=8"),
        ({"width": 8, "blocks": 1, "growth": 4, "depth": 3}, "'nrp' takes no argument 'depth'; accepted: width, blocks, growth"),
    ],
)
def test_constructor_arguments_from_a_file_are_validated_before_building(tmp_path, tiny_nrp, arguments, message):
    from nrp.checkpoints import Checkpoint, write_checkpoint

    path = tmp_path / "hostile.safetensors"
    write_checkpoint(Checkpoint(tiny_nrp.state_dict(), "nrp", arguments), path)
    assert message in error_of(path)


def test_the_shipped_purifier_loads_unverified_but_finite():
    """The shipped file predates the recorded digests: it is read unverified (documented), and checked finite."""
    from safetensors import safe_open

    from nrp.purifiers import shipped_weights

    with safe_open(str(shipped_weights()), framework="pt") as handle:
        recorded = (handle.metadata() or {}).get("sha256")
    network = load_network(shipped_weights())
    assert all(torch.isfinite(value).all() for value in network.state_dict().values())
    if recorded is not None:
        from nrp.integrity import tensor_digest

        assert tensor_digest(network.state_dict()) == recorded
