import sys
import warnings

import pytest
import torch
from torch import nn

from nrp.errors import InputError
from nrp.zoo import ImageClassifier, as_classifier, load_model_file


class TinyClassifier(nn.Module):
    """[0, 1] images -> 1000 logits, as a user's own scripted model would be."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x - 0.5)).mean(dim=(2, 3)))


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return TinyClassifier().eval()


def save_torchscript(module: nn.Module, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still what users ship
        torch.jit.save(torch.jit.script(module), str(path))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ts"])
def test_torchscript_round_trip_gives_the_original_outputs_and_gradients(tmp_path, tiny, suffix):
    path = tmp_path / f"mine{suffix}"
    save_torchscript(tiny, path)
    loaded = load_model_file(path)
    assert not loaded.training and all(not p.requires_grad for p in loaded.parameters())
    x = torch.rand(2, 3, 20, 24, requires_grad=True)
    with torch.no_grad():
        assert torch.allclose(loaded(x), tiny(x), atol=1e-6)
    loaded(x)[:, 3].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_a_state_dict_saved_as_pth_is_refused_with_the_way_to_load_it(tmp_path, tiny):
    path = tmp_path / "weights.pth"
    torch.save(tiny.state_dict(), path)
    with pytest.raises(InputError, match=r"weights.pth is not a TorchScript model .*create_model\(name, weights=path\)"):
        load_model_file(path)


def test_missing_and_unknown_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="model file not found"):
        load_model_file(tmp_path / "absent.pt")
    (tmp_path / "model.h5").write_bytes(b"\0")
    with pytest.raises(InputError, match=r"unknown model file type '.h5'; expected .pt, .pth, .ts, .onnx"):
        load_model_file(tmp_path / "model.h5")


def test_as_classifier_takes_a_module_a_name_or_a_file(tmp_path, tiny):
    assert as_classifier(tiny) is tiny
    by_name = as_classifier("resnet18", pretrained=False, input_size=64)
    assert isinstance(by_name, ImageClassifier) and by_name.input_size == (64, 64)
    path = tmp_path / "mine.ts"
    save_torchscript(tiny, path)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(as_classifier(str(path))(x), tiny(x), atol=1e-6)


def test_as_classifier_refuses_options_it_cannot_apply_and_other_types(tmp_path, tiny):
    with pytest.raises(InputError, match="options pretrained apply to zoo names only"):
        as_classifier(tiny, pretrained=False)
    with pytest.raises(InputError, match="options input_size apply to zoo names only"):
        as_classifier(tmp_path / "mine.onnx", input_size=224)
    with pytest.raises(InputError, match="expected a model, a zoo name or a model file, got int"):
        as_classifier(3)
    with pytest.raises(InputError, match="unknown model 'not_a_model'"):
        as_classifier("not_a_model")


def test_onnx_without_onnxruntime_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(InputError, match="pip install onnxruntime"):
        load_model_file(path)


def linear_onnx_model(path, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """An ONNX graph built by hand: global average pool -> flatten -> x @ weight + bias."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])],
        initializer=[numpy_helper.from_array(weight.numpy(), "weight"), numpy_helper.from_array(bias.numpy(), "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture
def onnx_file(tmp_path):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    weight, bias = torch.randn(3, 1000), torch.randn(1000)
    path = tmp_path / "linear.onnx"
    linear_onnx_model(path, weight, bias)
    return path, weight, bias


def test_onnx_model_outputs_equal_the_same_computation_in_torch(onnx_file):
    path, weight, bias = onnx_file
    model = as_classifier(path)
    x = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    logits = model(x)
    assert logits.shape == (2, 1000) and logits.dtype == torch.float64
    assert torch.allclose(logits, x.mean(dim=(2, 3)) @ weight.double() + bias.double(), atol=1e-4)


def test_onnx_model_refuses_gradients_instead_of_giving_zeros(onnx_file):
    model = load_model_file(onnx_file[0])
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    logits = model(x)
    assert logits.requires_grad
    with pytest.raises(InputError, match="linear.onnx is evaluation-only"):
        logits.sum().backward()


def test_a_corrupt_onnx_file_is_refused_in_one_line(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf")
    with pytest.raises(InputError, match="broken.onnx is not a loadable ONNX model"):
        load_model_file(path)
