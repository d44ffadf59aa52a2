import pytest
import torch
import torchvision

from nrp.errors import InputError
from nrp.features import truncate, vgg_layer_aliases


@pytest.fixture(scope="module")
def vgg16():
    return torchvision.models.vgg16(weights=None).eval()


def test_vgg16_aliases_match_the_papers_layer_names(vgg16):
    aliases = vgg_layer_aliases(vgg16)
    # features: 0 conv1_1, 1 relu, 2 conv1_2, 3 relu, 4 pool1, ... 14 conv3_3, 15 relu, 16 pool3
    assert aliases["conv1_1"] == "features.1"
    assert aliases["conv3_3"] == "features.15"
    assert aliases["pool3"] == "features.16"
    assert aliases["conv5_3"] == "features.29"
    assert len([name for name in aliases if name.startswith("conv")]) == 13


def test_models_without_a_features_sequential_have_no_aliases():
    assert vgg_layer_aliases(torchvision.models.resnet18(weights=None)) == {}


def test_truncated_vgg16_equals_features_up_to_16_and_holds_nothing_past_it(vgg16):
    graph, nodes = truncate(vgg16, ["conv3_3"], "vgg16")
    assert nodes == ["features.15"]
    x = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(graph(x)["features.15"], vgg16.features[:16](x))
    names = {name for name, _ in graph.named_modules()}
    assert "features.14" in names
    assert not any(name.startswith(("features.16", "features.17", "classifier")) for name in names)


def test_several_layers_come_out_together(vgg16):
    graph, nodes = truncate(vgg16, ["conv1_2", "features.8"], "vgg16")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        outputs = graph(x)
        assert torch.equal(outputs["features.3"], vgg16.features[:4](x))
        assert torch.equal(outputs["features.8"], vgg16.features[:9](x))


def test_truncate_accepts_graph_node_names_of_other_backbones():
    resnet = torchvision.models.resnet18(weights=None).eval()
    graph, nodes = truncate(resnet, ["layer2"], "resnet18")
    with torch.no_grad():
        assert graph(torch.rand(1, 3, 64, 64))["layer2"].shape == (1, 128, 8, 8)
    assert nodes == ["layer2"]


def test_unknown_layer_is_refused_with_examples(vgg16):
    with pytest.raises(InputError, match=r"unknown layer 'conv9_9' of vgg16; it has \d+ layers, e\.g\. features\.0"):
        truncate(vgg16, ["conv1_1", "conv9_9"], "vgg16")
