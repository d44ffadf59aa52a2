"""Every zoo entry feeds a correctly sized image to its network unchanged, and states its published resize policy."""

import pytest
import torch
import torchvision

from nrp.zoo import create_model, model_names, model_spec

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name", model_names())
def test_an_input_of_the_models_size_reaches_the_bare_network_unchanged(name):
    # Iterates over the registry, so entries added later are checked too. Random weights: no download.
    if name.startswith("efficientnet-lite"):
        pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(0)
    model = create_model(name, pretrained=False)
    spec = model_spec(name)
    x = torch.rand(1, 3, *model.input_size)
    seen = []
    model.network.register_forward_hook(lambda module, inputs, output: seen.append((inputs[0], output)))
    with torch.no_grad():
        logits = model(x)
    network_input, network_output = seen[0]
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    assert torch.equal(network_input, (x - mean) / std)  # no resize, no crop: only the normalisation
    assert torch.equal(logits, network_output[:, model.label_offset:])


def test_timm_entries_take_timms_interpolation_antialiased_like_its_pil_resize():
    for name in ("inc_v3", "inc_v4", "incres_v2", "adv_inc_v3", "ens_adv_incres_v2"):
        config = timm.models.get_pretrained_cfg(model_spec(name).upstream)
        assert (model_spec(name).interpolation, model_spec(name).antialias) == (config.interpolation, True) == ("bicubic", True)
    model = create_model("inc_v3", pretrained=False)
    assert (model.interpolation, model.antialias, model.resize) == ("bicubic", True, 341)


def test_torchvision_entries_take_the_weights_presets_interpolation_and_antialias():
    for name in ("res152", "vgg19"):
        preset = torchvision.models.get_model_weights(model_spec(name).upstream).DEFAULT.transforms()
        assert model_spec(name).interpolation == preset.interpolation.value == "bilinear"
        assert model_spec(name).antialias is preset.antialias is True


def test_efficientnet_lite_entries_take_tensorflows_crop_padding_and_bicubic_resize():
    for name, size in (("efficientnet-lite0", 224), ("efficientnet-lite1", 240), ("efficientnet-lite2", 260)):
        spec = model_spec(name)
        assert spec.crop_pct == pytest.approx(size / (size + 32))
        assert (spec.interpolation, spec.antialias) == ("bicubic", False)


def test_every_preprocessing_field_can_be_overridden_by_a_call():
    model = create_model("resnet18", pretrained=False, input_size=32, crop_pct=1.0, interpolation="bicubic",
                         antialias=False)
    assert (model.input_size, model.resize, model.interpolation, model.antialias) == ((32, 32), None, "bicubic", False)
    assert model.identity["interpolation"] == "bicubic" and model.identity["weights"] == "random"
