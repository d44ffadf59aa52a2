import numpy as np
import pytest
import torch
from torch import nn

from nrp.errors import CheckpointError
from nrp.zoo.darknet import darknet_float_count, load_darknet_weights
from nrp.zoo.detector import YoloDetector, letterbox, letterbox_geometry
from nrp.zoo.yolov3_tiny_arch import ANCHORS, YoloV3Tiny, decode


def tiny_layers() -> list:
    """A conv with batch norm (3 -> 2, 3x3) and a detection-head conv with a bias (2 -> 4, 1x1)."""
    return [(nn.Conv2d(3, 2, 3, bias=False), nn.BatchNorm2d(2)), (nn.Conv2d(2, 4, 1), None)]


def write_weights(path, values: np.ndarray, major: int = 0, minor: int = 2) -> None:
    seen = np.array([123456], dtype="<i8" if major * 10 + minor >= 2 else "<i4")
    path.write_bytes(np.array([major, minor, 0], dtype="<i4").tobytes() + seen.tobytes() + values.astype("<f4").tobytes())


@pytest.mark.parametrize("minor", [1, 2])  # format 0.1 stores "seen" as int32, 0.2 on as int64
def test_every_float_goes_where_darknet_puts_it(tmp_path, minor):
    layers = tiny_layers()
    count = darknet_float_count(layers)
    assert count == (4 * 2 + 2 * 3 * 3 * 3) + (4 + 4 * 2)
    values = np.arange(count, dtype=np.float32)
    write_weights(tmp_path / "tiny.weights", values, minor=minor)
    header = load_darknet_weights(tmp_path / "tiny.weights", layers)
    assert header == {"major": 0, "minor": minor, "revision": 0, "seen": 123456}
    (conv, norm), (head, _) = layers
    # darknet's order for a BN conv: beta (bias), gamma (scale), rolling mean, rolling variance, then the kernel
    assert norm.bias.tolist() == [0, 1] and norm.weight.tolist() == [2, 3]
    assert norm.running_mean.tolist() == [4, 5] and norm.running_var.tolist() == [6, 7]
    assert torch.equal(conv.weight.flatten(), torch.arange(8, 62, dtype=torch.float32))
    assert conv.weight[1, 0, 0, 0] == 8 + 27  # (out, in, h, w), row-major
    # a conv without BN: its biases, then its kernel
    assert head.bias.tolist() == [62, 63, 64, 65]
    assert torch.equal(head.weight.flatten(), torch.arange(66, 74, dtype=torch.float32))


@pytest.mark.parametrize("change", [-1, 1])
def test_a_file_of_another_size_is_refused_and_nothing_is_loaded(tmp_path, change):
    layers = tiny_layers()
    write_weights(tmp_path / "other.weights", np.ones(darknet_float_count(layers) + change, dtype=np.float32))
    before = layers[1][0].bias.clone()
    with pytest.raises(CheckpointError, match="not this network's file"):
        load_darknet_weights(tmp_path / "other.weights", layers)
    assert torch.equal(layers[1][0].bias, before)


def test_yolov3_tiny_takes_exactly_the_published_files_floats():
    # 8,858,734 floats after the 20-byte header: 35,434,956 bytes, the size of darknet's yolov3-tiny.weights
    assert darknet_float_count(YoloV3Tiny().darknet_layers()) == 8_858_734
    assert 20 + 4 * 8_858_734 == 35_434_956


def test_yolov3_tiny_heads_have_darknets_shapes_and_pass_gradients():
    torch.manual_seed(0)
    first, second = YoloV3Tiny().eval()(torch.rand(1, 3, 416, 416))
    assert first.shape == (1, 255, 13, 13) and second.shape == (1, 255, 26, 26)
    detector = YoloDetector(YoloV3Tiny())
    x = torch.rand(1, 3, 60, 90, requires_grad=True)
    detector.raw(x)[..., 4].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_decode_places_a_zero_prediction_at_the_cell_centre_with_the_anchor_size():
    maps = (torch.zeros(1, 255, 13, 13), torch.zeros(1, 255, 26, 26))
    boxes = decode(maps, (416, 416))
    assert boxes.shape == (1, 3 * 13 * 13 + 3 * 26 * 26, 85)
    # first head (stride 32), anchor 3, cell row 2 col 5: centre ((5 + 0.5) * 32, (2 + 0.5) * 32)
    index = 0 * 169 + 2 * 13 + 5
    assert boxes[0, index, :4].tolist() == [176.0, 80.0, *map(float, ANCHORS[3])]
    assert torch.allclose(boxes[0, :, 4:], torch.full_like(boxes[0, :, 4:], 0.5))


def test_letterbox_keeps_the_aspect_and_pads_with_grey():
    x = torch.zeros(1, 3, 100, 200)
    padded, scale, (top, left) = letterbox(x)
    assert padded.shape == (1, 3, 416, 416) and scale == 416 / 200 and (top, left) == (104, 0)
    assert letterbox_geometry(100, 200) == (416 / 200, (208, 416), (104, 0))
    assert float(padded[0, 0, 0, 0]) == 0.5 and float(padded[0, 0, 208, 208]) == 0.0


class OneObject(nn.Module):
    """Head maps with a single confident "dog" (class 16) in cell (row 6, col 6) of the stride-32 head."""

    def forward(self, x):
        first, second = torch.full((1, 255, 13, 13), -20.0), torch.full((1, 255, 26, 26), -20.0)
        first[0, 0:2, 6, 6] = 0.0  # anchor 3: centre offsets 0.5
        first[0, 2:4, 6, 6] = 0.0  # size = the anchor (81, 82)
        first[0, 4, 6, 6] = 20.0  # objectness 1
        first[0, 5 + 16, 6, 6] = 20.0
        return first, second


def test_detections_come_back_in_the_images_pixels_with_torchvisions_labels():
    detector = YoloDetector(OneObject())
    found = detector(torch.rand(1, 3, 208, 416))[0]  # scale 1, padded 104 above and below
    assert found["labels"].tolist() == [18]  # darknet class 16 "dog" is torchvision label 18
    centre_x, centre_y = 6.5 * 32, 6.5 * 32 - 104
    expected = [centre_x - 40.5, centre_y - 41, centre_x + 40.5, centre_y + 41]
    assert torch.allclose(found["boxes"][0], torch.tensor(expected), atol=1e-3)
    assert float(found["scores"][0]) > 0.99


def test_batch_norm_divides_by_the_standard_deviation_plus_1e6_as_darknet_does():
    """A NumPy transcription of darknet's normalize_cpu + scale_bias + add_bias, on channels of small variance
    (where torch's sqrt(var + 1e-5) is far from Darknet's sqrt(var) + 1e-6) and one of variance zero."""
    from nrp.zoo.yolov3_tiny_arch import DarknetBatchNorm2d
    norm = DarknetBatchNorm2d(4).eval()
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor([0.0, 0.5, -1.0, 2.0]))
        norm.running_var.copy_(torch.tensor([0.0, 1e-6, 1e-4, 4.0]))
        norm.weight.copy_(torch.tensor([1.0, 2.0, -0.5, 1.5]))
        norm.bias.copy_(torch.tensor([0.0, -1.0, 0.25, 3.0]))
    x = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    mean, var, gamma, beta = (t.detach().numpy()[None, :, None, None] for t in (norm.running_mean, norm.running_var, norm.weight, norm.bias))
    expected = (x.numpy() - mean) / (np.sqrt(var) + np.float32(0.000001)) * gamma + beta
    np.testing.assert_allclose(norm(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    # The known answer of the zero-variance channel: 1e-6 above the mean is one standard unit.
    assert norm(torch.full((1, 4, 1, 1), 1e-6))[0, 0, 0, 0].item() == pytest.approx(1.0, rel=1e-4)
    norms = [norm for _, norm in YoloV3Tiny().darknet_layers() if norm is not None]
    assert len(norms) == 11 and all(isinstance(norm, DarknetBatchNorm2d) for norm in norms)
