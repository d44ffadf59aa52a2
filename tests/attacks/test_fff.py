import pytest
import torch
from torch import nn

from nrp.attacks import apply_universal, fff, fff_objective, load_perturbation, save_perturbation, vgg_activations
from nrp.errors import InputError


class Activations(nn.Module):
    """A tiny two-layer extractor returning the list of its ReLU outputs; parameters left trainable."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1).to(dtype)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1).to(dtype)

    def forward(self, x):
        first = torch.relu(self.conv1(x - 0.45))
        return [first, torch.relu(self.conv2(first))]


class TinyVGG(nn.Module):
    """Just enough VGG for the layer aliases: a ``features`` Sequential of conv / ReLU / pool blocks."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


@pytest.mark.parametrize("eps", [0.0, 2 / 255, 10 / 255, 0.2])
def test_the_perturbation_stays_within_eps(eps):
    extractor = Activations(torch.float64)
    delta = fff(extractor, shape=(3, 12, 12), eps=eps, iterations=20, lr=0.01, generator=torch.Generator().manual_seed(0))
    assert delta.shape == (3, 12, 12) and delta.dtype == torch.float64 and not delta.requires_grad
    assert delta.abs().max().item() <= eps
    assert all(p.grad is None for p in extractor.parameters())


def test_the_objective_increases_over_the_iterations():
    history = []
    fff(Activations(), shape=(3, 16, 16), iterations=60, lr=2e-3, generator=torch.Generator().manual_seed(0),
        on_step=lambda iteration, objective: history.append(objective))
    assert len(history) == 60
    assert sum(history[-10:]) / 10 > sum(history[:10]) / 10 + 0.05
    assert sum(b >= a for a, b in zip(history, history[1:])) >= 0.8 * 59


def test_the_optimised_perturbation_beats_random_noise_of_the_same_size():
    extractor = Activations()
    delta = fff(extractor, shape=(3, 16, 16), iterations=100, lr=2e-3, generator=torch.Generator().manual_seed(0))
    canvas = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    noise = torch.empty(3, 16, 16).uniform_(-10 / 255, 10 / 255, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert fff_objective(extractor((canvas + delta)[None])) > fff_objective(extractor((canvas + noise)[None]))


def test_fff_is_reproducible_with_a_generator():
    runs = [fff(Activations(), shape=(3, 8, 8), iterations=3, generator=torch.Generator().manual_seed(s)) for s in (2, 2, 3)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_the_objective_is_the_sum_of_log_mean_activations():
    a, b = torch.full((1, 2, 3, 3), 2.0), torch.full((1, 4, 2, 2), 0.5)
    expected = torch.log(torch.tensor(2.0)) + torch.log(torch.tensor(0.5))
    assert torch.allclose(fff_objective([a, b]), expected)
    assert torch.allclose(fff_objective({"a": a, "b": b}), expected)
    assert torch.isfinite(fff_objective(torch.zeros(1, 2, 2, 2)))


def test_apply_universal_adds_the_perturbation_and_clips():
    x = torch.rand(4, 3, 8, 8)
    x[0] = 1.0
    delta = torch.full((3, 8, 8), 10 / 255)
    out = apply_universal(x, delta)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out[1:], (x[1:] + 10 / 255).clamp(max=1))
    assert torch.equal(out[0], x[0])
    with pytest.raises(InputError, match=r"shape \(3, 8, 8\) cannot be added to images of shape \(4, 3, 16, 16\)"):
        apply_universal(torch.rand(4, 3, 16, 16), delta)


def test_a_saved_perturbation_loads_back_unchanged(tmp_path):
    delta = torch.empty(3, 8, 8).uniform_(-0.04, 0.04)
    path = tmp_path / "fff" / "vgg16.safetensors"
    save_perturbation(path, delta, eps=10 / 255, iterations=10_000)
    assert torch.equal(load_perturbation(path), delta)
    assert [p.name for p in path.parent.iterdir()] == ["vgg16.safetensors"]  # no temporary file left
    with pytest.raises(InputError, match="no perturbation file"):
        load_perturbation(tmp_path / "missing.safetensors")


def test_vgg_activations_returns_every_relu_after_a_conv():
    model = TinyVGG()
    extractor = vgg_activations(model)
    outputs = extractor(torch.rand(1, 3, 8, 8))
    assert list(outputs) == ["features.1", "features.3", "features.6"]
    assert outputs["features.6"].shape == (1, 8, 4, 4) and all((o >= 0).all() for o in outputs.values())
    delta = fff(extractor, shape=(3, 8, 8), iterations=2)
    assert delta.abs().max() <= 10 / 255


def test_vgg_activations_takes_aliases_and_refuses_unknown_layers():
    model = TinyVGG()
    assert list(vgg_activations(model, ["conv1_2", "features.6"])(torch.rand(1, 3, 8, 8))) == ["features.3", "features.6"]
    with pytest.raises(InputError, match=r"unknown layers \['conv9_9'\]"):
        vgg_activations(model, ["conv9_9"])


def test_fff_refuses_bad_arguments():
    with pytest.raises(InputError, match=r"eps must be in \[0, 1\]"):
        fff(Activations(), eps=10)
    with pytest.raises(InputError, match=r"iterations must be an integer >= 1, got 0"):
        fff(Activations(), iterations=0)
    with pytest.raises(InputError, match=r"shape must be \(C, H, W\)"):
        fff(Activations(), shape=(224, 224))
    with pytest.raises(InputError, match=r"canvas must be one value or 3 values in \[0, 1\]"):
        fff(Activations(), shape=(3, 8, 8), canvas=(0.5, 0.5))
