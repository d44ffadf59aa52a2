import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from nrp.checkpoints import Checkpoint, write_checkpoint
from nrp.errors import CheckpointError, InputError, WeightsUnavailableError
from nrp.features import FeatureExtractor, build_classifier, build_feature_extractor

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def vgg_features():
    """A random VGG16 `features[:16]` (the paper's F_psi) and its weights as a partial state dict."""
    torch.manual_seed(0)
    features = torchvision.models.vgg16(weights=None).features[:16].eval()
    state = {f"features.{key}": value for key, value in features.state_dict().items()}
    return features, state


@pytest.fixture
def weights_file(tmp_path: Path, vgg_features) -> Path:
    path = tmp_path / "vgg16_features.pth"
    torch.save(vgg_features[1], path)
    return path


def test_default_extractor_is_vgg16_conv3_3_with_imagenet_normalisation_inside(weights_file, vgg_features):
    extractor = build_feature_extractor(weights=weights_file)
    assert isinstance(extractor, FeatureExtractor)
    assert extractor.name == "vgg16:features.15"
    x = torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        expected = vgg_features[0]((x - IMAGENET_MEAN) / IMAGENET_STD)
        assert torch.allclose(extractor(x), expected, atol=1e-6)


def test_parameters_are_frozen_and_gradients_reach_only_the_input(weights_file):
    extractor = build_feature_extractor(weights=weights_file)
    assert not extractor.training
    assert all(not p.requires_grad for p in extractor.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    extractor(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.parameters())


def test_safetensors_weights_of_the_full_layout_load_too(tmp_path: Path, vgg_features):
    path = tmp_path / "vgg.safetensors"
    write_checkpoint(Checkpoint(vgg_features[1]), path)
    extractor = build_feature_extractor(weights=path)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(extractor(x), vgg_features[0]((x - IMAGENET_MEAN) / IMAGENET_STD), atol=1e-6)


def test_weights_of_another_network_are_refused_in_one_line(tmp_path: Path):
    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError) as caught:
        build_feature_extractor(weights=path)
    message = str(caught.value)
    assert "\n" not in message
    assert "resnet.pth does not fit vgg16 up to features.15" in message
    assert "missing keys (features.0.weight" in message
    assert "unexpected keys (conv1.weight" in message


def test_missing_cached_weights_name_the_file_the_cache_and_the_flag(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as caught:
        build_feature_extractor(download=False)
    message = str(caught.value)
    assert "vgg16-397923af.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "weights=FILE" in message  # the command line adds its own flag (nrp.cli.messages)


def test_failed_download_becomes_one_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match=r"could not be downloaded \(<urlopen error Name or service not known>\)"):
        build_feature_extractor(download=True)


def test_weights_in_the_torch_hub_cache_are_used(tmp_path: Path, monkeypatch, vgg_features):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(3)
    vgg = torchvision.models.vgg16(weights=None).eval()
    torch.save(vgg.state_dict(), cache / "vgg16-397923af.pth")  # the cache holds the whole network's weights
    extractor = build_feature_extractor(download=False)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(extractor(x), vgg.features[:16]((x - IMAGENET_MEAN) / IMAGENET_STD), atol=1e-6)


def test_other_torchvision_backbones_use_their_own_normalisation():
    extractor = build_feature_extractor("resnet18", "layer1", pretrained=False)
    preset = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    assert torch.allclose(extractor.mean.flatten(), torch.tensor(preset.mean))
    assert torch.allclose(extractor.std.flatten(), torch.tensor(preset.std))
    assert extractor(torch.rand(1, 3, 32, 32)).shape == (1, 64, 8, 8)


def test_unknown_backbone_is_refused():
    with pytest.raises(InputError, match="unknown backbone 'vgg17'"):
        build_feature_extractor("vgg17", pretrained=False)


def test_timm_backbones_take_normalisation_from_their_config():
    timm = pytest.importorskip("timm")
    extractor = build_feature_extractor("timm/resnet18", "layer2", pretrained=False)
    config = timm.create_model("resnet18", pretrained=False).pretrained_cfg
    assert torch.allclose(extractor.mean.flatten(), torch.tensor(config["mean"], dtype=torch.float32))
    assert extractor(torch.rand(1, 3, 64, 64)).shape == (1, 128, 8, 8)
    assert extractor.name == "timm/resnet18:layer2"


def test_classifier_is_the_whole_model_with_normalisation_inside(tmp_path: Path):
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    classifier = build_classifier("resnet18", weights=path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(classifier(x), resnet((x - IMAGENET_MEAN) / IMAGENET_STD), atol=1e-5)
    assert all(not p.requires_grad for p in classifier.parameters())


def test_classifier_weights_must_hold_the_whole_model(tmp_path: Path):
    path = tmp_path / "partial.pth"
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    with pytest.raises(CheckpointError, match=r"does not fit resnet18: 2 missing keys \(fc.weight, fc.bias\)"):
        build_classifier("resnet18", weights=path)


def test_inception_v3_re_normalises_its_input_as_its_pretrained_weights_expect(tmp_path: Path):
    torch.manual_seed(0)
    reference = torchvision.models.inception_v3(weights=None, init_weights=False, transform_input=True, aux_logits=True).eval()
    torch.save(reference.state_dict(), tmp_path / "inception_v3.pth")
    extractor = build_feature_extractor("inception_v3", "Conv2d_1a_3x3", weights=tmp_path / "inception_v3.pth")
    x = torch.rand(2, 3, 75, 75)
    normalised = torchvision.transforms.functional.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    with torch.no_grad():
        expected = reference.Conv2d_1a_3x3(reference._transform_input(normalised))
        without_transform = reference.Conv2d_1a_3x3(normalised)
        torch.testing.assert_close(extractor(x), expected)
        assert (extractor(x) - without_transform).abs().max() > 1e-2


def test_input_size_shows_the_backbone_the_image_resized_and_sends_gradients_to_the_image_pixels():
    torch.manual_seed(0)
    body = torch.nn.Conv2d(3, 4, 3, stride=2)
    extractor = FeatureExtractor(body, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), input_size=12)
    x = torch.rand(2, 3, 20, 16, requires_grad=True)
    resized = torch.nn.functional.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False, antialias=True)
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    features = extractor(x)
    torch.testing.assert_close(features, body((resized - mean) / std))
    assert features.shape == (2, 4, 5, 5)
    (gradient,) = torch.autograd.grad(features.square().sum(), x)
    assert gradient.shape == x.shape and bool((gradient != 0).any())
    plain = FeatureExtractor(body, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert plain(x).shape == (2, 4, 9, 7)  # no input_size: the image's own size


def test_input_size_reaches_the_built_extractor_and_bad_sizes_are_refused():
    extractor = build_feature_extractor("vgg16", "conv1_2", pretrained=False, input_size=24)
    assert extractor(torch.rand(1, 3, 40, 30)).shape == (1, 64, 24, 24)
    with pytest.raises(InputError, match="input_size must be a side in pixels >= 1, got 0"):
        build_feature_extractor("vgg16", "conv1_2", pretrained=False, input_size=0)
