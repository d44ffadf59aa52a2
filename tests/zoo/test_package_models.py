import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from nrp.zoo import MODELS, create_model
from nrp.zoo.package_models import CAFFE_BGR_MEAN, SQUEEZENET_INPUT, keras_squeezenet_state

h5py = pytest.importorskip("h5py", reason="h5py (the models extra) reads the Keras SqueezeNet file")

# (Keras layer, kernel shape (h, w, in, out)) of SqueezeNet v1.1 as the Keras port stores it.
FIRES = [(2, 64, 16, 64), (3, 128, 16, 64), (4, 128, 32, 128), (5, 256, 32, 128),
         (6, 256, 48, 192), (7, 384, 48, 192), (8, 384, 64, 256), (9, 512, 64, 256)]


def keras_layers() -> list[tuple[str, tuple[int, int, int, int]]]:
    layers = [("conv1", (3, 3, 3, 64))]
    for index, inputs, squeeze, expand in FIRES:
        layers += [(f"fire{index}/squeeze1x1", (1, 1, inputs, squeeze)), (f"fire{index}/expand1x1", (1, 1, squeeze, expand)),
                   (f"fire{index}/expand3x3", (3, 3, squeeze, expand))]
    return layers + [("conv10", (1, 1, 512, 1000))]


@pytest.fixture
def keras_file(tmp_path):
    """A Keras-layout SqueezeNet HDF5 file of random weights, and its arrays."""
    rng = np.random.default_rng(0)
    arrays = {}
    path = tmp_path / "squeezenet_keras.h5"
    with h5py.File(path, "w") as handle:
        for layer, shape in keras_layers():
            arrays[layer] = (rng.normal(0, 0.05, shape).astype(np.float32), rng.normal(0, 0.05, shape[-1]).astype(np.float32))
            handle[f"{layer}/{layer}_W:0"], handle[f"{layer}/{layer}_b:0"] = arrays[layer]
    return path, arrays


def with_weights_file(monkeypatch, name, path):
    monkeypatch.setitem(MODELS, name, dataclasses.replace(MODELS[name], weights_file=lambda: path))


def test_mobilenet_v2_is_torchvisions_model_on_the_same_state_dict(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v2().eval()
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(reference.state_dict(), path)
    with_weights_file(monkeypatch, "mobilenet_v2", path)
    model = create_model("mobilenet_v2")
    x = torch.rand(2, 3, 256, 300)
    # torchvision's IMAGENET1K_V1 evaluation transforms: short side 256, centre crop 224, ImageNet mean/std.
    resized = F.interpolate(x, size=(256, 300), mode="bilinear", align_corners=False)
    top, left = 16, 38
    crop = resized[..., top:top + 224, left:left + 224]
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference((crop - mean) / std)
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)


def test_squeezenet_first_conv_is_the_keras_kernel_on_caffe_input(keras_file, tmp_path, monkeypatch):
    path, arrays = keras_file
    converted = tmp_path / "converted.pth"
    torch.save(keras_squeezenet_state(path), converted)
    with_weights_file(monkeypatch, "squeezenet1_1", converted)
    model = create_model("squeezenet1_1")
    x = torch.rand(1, 3, SQUEEZENET_INPUT, SQUEEZENET_INPUT)
    seen = {}
    model.network.features[0].register_forward_hook(lambda module, inputs, output: seen.update(conv1=output.clone()))  # before the in-place ReLU
    with torch.no_grad():
        model(x)
    # NumPy transcription of the Keras model's first layer: Caffe input (BGR, 0-255, minus the BGR mean),
    # a 'valid' 3x3 convolution of stride 2 with the (h, w, in, out) kernel, plus the bias.
    bgr = x[0].numpy()[::-1] * 255.0 - np.asarray(CAFFE_BGR_MEAN, dtype=np.float64)[:, None, None]
    kernel, bias = arrays["conv1"]
    size = (SQUEEZENET_INPUT - 3) // 2 + 1
    expected = np.empty((64, size, size))
    for row in range(size):
        for col in range(size):
            patch = bgr[:, 2 * row:2 * row + 3, 2 * col:2 * col + 3]  # (in, h, w)
            expected[:, row, col] = np.einsum("chw,hwco->o", patch, kernel) + bias
    np.testing.assert_allclose(seen["conv1"][0].numpy(), expected, rtol=1e-4, atol=1e-3)


def test_squeezenet_conversion_transposes_every_kernel(keras_file):
    path, arrays = keras_file
    state = keras_squeezenet_state(path)
    assert len(state) == 52  # 26 convolutions, kernel and bias each
    network = torchvision.models.squeezenet1_1()
    network.load_state_dict(state)  # strict: every key present, every shape right
    kernel, _ = arrays["fire5/expand3x3"]
    np.testing.assert_array_equal(state["features.7.expand3x3.weight"][5, 7].numpy(), kernel[:, :, 7, 5])
    np.testing.assert_array_equal(state["classifier.1.bias"].numpy(), arrays["conv10"][1])


def test_a_keras_file_missing_a_layer_is_refused(tmp_path):
    from nrp.errors import CheckpointError
    path = tmp_path / "partial.h5"
    with h5py.File(path, "w") as handle:
        handle["conv1/conv1_W:0"], handle["conv1/conv1_b:0"] = np.zeros((3, 3, 3, 64), np.float32), np.zeros(64, np.float32)
    with pytest.raises(CheckpointError, match="fire2/squeeze1x1"):
        keras_squeezenet_state(path)
