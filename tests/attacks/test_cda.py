"""CDA's generator against torchattack's (same keys, shapes, output; its saved state dict loads unchanged)."""

import pytest
import torch

from nrp.attacks import CDAGenerator, cda, load_cda_generator
from nrp.errors import CheckpointError

resnet_generator = pytest.importorskip("torchattack.generative.resnet_generator")


def theirs(inception: bool, seed: int = 0) -> torch.nn.Module:
    """torchattack's generator with random weights and non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    network = resnet_generator.ResNetGenerator(inception=inception)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    return network.eval()


@pytest.mark.parametrize("inception", [False, True])
def test_same_keys_and_shapes_as_torchattacks_generator(inception):
    ours = CDAGenerator(inception=inception).state_dict()
    reference = theirs(inception).state_dict()
    assert list(ours) == list(reference)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}
    assert sum(v.numel() for k, v in ours.items() if "running" not in k and "num_batches" not in k) == 7_841_411


@pytest.mark.parametrize("inception, side", [(False, 32), (True, 35)])
def test_a_state_dict_saved_from_torchattack_loads_unchanged_and_gives_the_same_output(tmp_path, inception, side):
    reference = theirs(inception)
    path = tmp_path / "cda_generator.pth"
    torch.save(reference.state_dict(), path)
    ours = load_cda_generator(path, inception=inception)
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
    assert expected.shape == x.shape  # the Inception crop turns 36 back into 35
    assert torch.equal(ours(x), expected)
    assert not ours.training and not any(p.requires_grad for p in ours.parameters())


def test_cda_projects_the_generators_output_into_the_ball_as_torchattack_does(tmp_path):
    reference = theirs(False, seed=2)
    path = tmp_path / "g.pth"
    torch.save(reference.state_dict(), path)
    network = load_cda_generator(path)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    eps = 8 / 255
    with torch.no_grad():
        expected = (x + (reference(x) - x).clamp(-eps, eps)).clamp(0, 1)  # torchattack.CDA.forward
    x_adv = cda(x, network, eps=eps)
    assert torch.allclose(x_adv, expected, atol=1e-7, rtol=0)
    assert (x_adv - x).abs().max() <= eps + 1e-7
    assert ((x_adv - x).abs() > eps - 1e-6).float().mean() > 0.2  # the budget is what limits it


def test_a_file_of_another_network_is_refused_in_one_line(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Conv2d(3, 3, 3).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"does not fit the CDA generator: .*missing keys \(block1.1.weight"):
        load_cda_generator(path)
