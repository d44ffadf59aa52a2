import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torch import nn

from nrp.errors import InputError
from nrp.zoo import ImageClassifier, resize_crop, scale_size

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def reference(x: torch.Tensor, input_size: tuple[int, int], resize: int | None, antialias: bool = True,
              mode: TF.InterpolationMode = TF.InterpolationMode.BILINEAR) -> torch.Tensor:
    """torchvision's resize + center_crop (or a straight resize), then manual normalisation."""
    if resize is None:
        x = TF.resize(x, list(input_size), interpolation=mode, antialias=antialias)
    else:
        x = TF.resize(x, [resize], interpolation=mode, antialias=antialias)
        x = TF.center_crop(x, list(input_size))
    if mode == TF.InterpolationMode.BICUBIC:
        x = x.clamp(0, 1)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@pytest.mark.parametrize("image_size", [(64, 80), (80, 64), (37, 37), (300, 301)])
@pytest.mark.parametrize("input_size, crop_pct, resize", [
    (32, 0.875, 36),
    (29, 29 / 34, 34),
    (24, 1.0, None),
    (24, None, None),
])
def test_preprocessing_equals_torchvision_resize_center_crop_and_normalisation(image_size, input_size, crop_pct, resize):
    # An identity network exposes exactly what the classifier feeds its network.
    model = ImageClassifier(nn.Identity(), input_size, MEAN, STD, crop_pct=crop_pct)
    assert model.resize == resize
    x = torch.rand(2, 3, *image_size)
    expected = reference(x, (input_size, input_size), resize)
    assert model(x).shape == (2, 3, input_size, input_size)
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_a_non_square_input_size_resizes_both_sides_by_crop_pct_like_timm():
    model = ImageClassifier(nn.Identity(), (20, 30), MEAN, STD, crop_pct=0.8)
    assert model.resize == (25, 37)
    x = torch.rand(1, 3, 50, 40)
    expected = TF.center_crop(TF.resize(x, [25, 37], antialias=True), [20, 30])
    assert torch.allclose(model(x), reference(expected, (20, 30), None), atol=1e-5)


def test_scale_size_matches_timm_and_torchvision_presets():
    assert scale_size(299, 0.875) == 341            # timm inception_v3
    assert scale_size(299, 0.8975) == 333           # timm inception_resnet_v2
    assert scale_size(224, 224 / 232) == 232        # torchvision ResNet-152 V2 weights
    assert scale_size(200, 200 / 241) == 241        # 200 / (200 / 241) < 241 in floats: floor must not give 240
    assert scale_size(224, 224 / 256) == 256
    assert scale_size(224, 1.0) is None and scale_size(224, None) is None
    with pytest.raises(InputError, match="crop_pct must be in"):
        scale_size(224, 1.5)


@pytest.mark.parametrize("crop_pct", [1.0, 0.875, 0.5])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_an_image_already_at_input_size_is_passed_unchanged_whatever_the_crop(crop_pct, interpolation):
    # A resize-and-crop of a correctly sized image would be a defense of its own and lose the borders.
    model = ImageClassifier(nn.Identity(), (16, 16), (0.0,) * 3, (1.0,) * 3, crop_pct=crop_pct,
                            interpolation=interpolation)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(model(x), x)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("mode", [TF.InterpolationMode.BILINEAR, TF.InterpolationMode.BICUBIC])
def test_other_sizes_follow_the_interpolation_and_antialiasing_the_model_states(antialias, mode):
    model = ImageClassifier(nn.Identity(), 24, MEAN, STD, crop_pct=0.75, interpolation=mode.value, antialias=antialias)
    x = torch.rand(2, 3, 70, 90)
    assert torch.allclose(model(x), reference(x, (24, 24), 32, antialias, mode), atol=1e-5)
    other = ImageClassifier(nn.Identity(), 24, MEAN, STD, crop_pct=0.75, interpolation=mode.value,
                            antialias=not antialias)
    assert not torch.allclose(model(x), other(x), atol=1e-3)  # the flag reaches the resize


def test_an_unknown_interpolation_is_refused_naming_the_known_ones():
    with pytest.raises(InputError, match="interpolation must be one of bilinear, bicubic, got 'area'"):
        ImageClassifier(nn.Identity(), 8, MEAN, STD, interpolation="area")


def test_label_offset_one_drops_exactly_the_background_logit():
    torch.manual_seed(0)
    network = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 1001))
    model = ImageClassifier(network, 8, MEAN, STD, crop_pct=1.0, label_offset=1)
    x = torch.rand(3, 3, 20, 24)
    with torch.no_grad():
        full = network(reference(x, (8, 8), None))
        logits = model(x)
    assert logits.shape == (3, 1000)
    assert torch.allclose(logits, full[:, 1:], atol=1e-6)
    assert model.num_classes == 1000 and model.label_offset == 1


def test_label_offset_zero_keeps_every_logit():
    network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1000))
    model = ImageClassifier(network, 4, MEAN, STD, crop_pct=1.0)
    x = torch.rand(2, 3, 4, 4)
    with torch.no_grad():
        assert torch.allclose(model(x), network(reference(x, (4, 4), None)), atol=1e-6)


def test_frozen_eval_mode_and_gradients_reach_the_input():
    network = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(1000))
    network(torch.rand(2, 3, 16, 16))  # materialise the lazy layer
    model = ImageClassifier(network, 16, MEAN, STD, crop_pct=0.875)
    assert not model.training and not network[1].training
    assert all(not p.requires_grad for p in model.parameters())
    x = torch.rand(1, 3, 40, 30, requires_grad=True)
    model(x)[0, 7].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_preprocessing_gradient_matches_finite_differences():
    x = torch.rand(1, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: resize_crop(t, 5, resize=7), (x,))


def test_mean_and_std_are_buffers_that_follow_the_module():
    model = ImageClassifier(nn.Identity(), 8, MEAN, STD)
    assert {"mean", "std"} <= dict(model.named_buffers()).keys()
    assert model.double().mean.dtype == torch.float64


@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 1, 16, 16), (1, 4, 16, 16)])
def test_inputs_that_are_not_rgb_batches_are_refused_naming_the_shape(shape):
    model = ImageClassifier(nn.Identity(), 8, MEAN, STD, name="toy")
    with pytest.raises(InputError, match=r"toy takes RGB images \(B, 3, H, W\), got shape"):
        model(torch.rand(*shape))


def test_bad_label_offset_and_impossible_crop_are_refused():
    with pytest.raises(InputError, match="label_offset must be 0 or 1"):
        ImageClassifier(nn.Identity(), 8, MEAN, STD, label_offset=2)
    with pytest.raises(InputError, match="cannot centre-crop 8x8"):
        resize_crop(torch.rand(1, 3, 10, 10), 8, resize=6)
