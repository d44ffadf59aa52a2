import pytest
import torch
from torch import nn

from nrp.attacks import ssp
from nrp.errors import InputError


def images(seed: int, dtype=torch.float32, shape=(3, 3, 16, 16)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator, dtype=dtype)
    x[:, :, 0, :4] = 0.0  # pixels on the [0, 1] boundary must stay inside too
    x[:, :, 1, :4] = 1.0
    return x


@pytest.mark.parametrize("eps", [0.0, 1 / 255, 8 / 255, 16 / 255, 0.5])
@pytest.mark.parametrize("start", ["normal", "uniform"])
def test_ssp_never_leaves_the_eps_ball_or_the_unit_interval(features64, eps, start):
    x = images(0, torch.float64)
    x_adv = ssp(x, features64, eps=eps, step_size=0.01, steps=8, start=start, generator=torch.Generator().manual_seed(0))
    assert x_adv.dtype == torch.float64
    assert (x_adv - x).abs().max().item() <= eps + 1e-12
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0


def test_ssp_increases_the_feature_distance_on_average(features):
    history = []
    x = images(1)
    ssp(x, features, eps=16 / 255, step_size=2 / 255, steps=30, start="uniform",
        generator=torch.Generator().manual_seed(0), on_step=lambda step, d: history.append(d.mean().item()))
    assert len(history) == 30
    first, last = sum(history[:10]) / 10, sum(history[-10:]) / 10
    assert last > 2 * first
    increases = sum(b > a for a, b in zip(history, history[1:]))
    assert increases >= 0.7 * (len(history) - 1)


def test_ssp_is_reproducible_under_a_seed_and_varies_across_seeds(features):
    x = images(2)
    runs = [ssp(x, features, steps=5, generator=torch.Generator().manual_seed(seed)) for seed in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def reference_ssp(x, features, eps, step_size, steps, generator):
    """Algorithm 1 as the authors' script writes it: pure-noise start, MSE, sign step, clip."""
    adv = torch.randn(x.shape, generator=generator)
    clean = features(x).detach()
    for _ in range(steps):
        adv = adv.clone().requires_grad_(True)
        loss = nn.functional.mse_loss(features(adv), clean)
        loss.backward()
        adv = adv.detach() + step_size * adv.grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv


def test_ssp_equals_a_plain_transcription_of_algorithm_1(features):
    x = images(3)
    ours = ssp(x, features, eps=16 / 255, step_size=0.01, steps=6, generator=torch.Generator().manual_seed(5))
    reference = reference_ssp(x, features, 16 / 255, 0.01, 6, torch.Generator().manual_seed(5))
    assert torch.equal(ours, reference)


def test_ssp_against_the_identity_feature_map_pushes_every_pixel_to_the_ball_boundary():
    # d/dx' ||x' - x||^2 = 2 (x' - x): each pixel runs away from x in its start direction until clipped.
    x = torch.full((1, 3, 4, 4), 0.5)
    eps = 8 / 255
    x_adv = ssp(x, nn.Identity(), eps=eps, step_size=1 / 255, steps=20, start="uniform", generator=torch.Generator().manual_seed(0))
    assert torch.allclose((x_adv - x).abs(), torch.full_like(x, eps))


def test_clean_features_are_computed_once_and_the_model_is_left_as_it_was(features):
    calls = []
    features.train()
    features.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].requires_grad))
    ssp(images(4), features, steps=7)
    assert calls == [False] + [True] * 7
    assert features.training


def test_ssp_computes_no_weight_gradients():
    net = nn.Conv2d(3, 4, 3)
    ssp(images(5), net, steps=3)
    assert net.weight.grad is None and net.bias.grad is None


def test_ssp_returns_a_detached_tensor_on_the_input_device(features):
    x_adv = ssp(images(6), features, steps=2)
    assert not x_adv.requires_grad and x_adv.device == torch.device("cpu")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eps": -0.1}, r"eps must be in \[0, 1\]"),
        ({"eps": 16.0}, r"eps must be in \[0, 1\] \(\[0, 255\] on the command line\), got 16.0"),
        ({"steps": 0}, "steps must be >= 1, got 0"),
        ({"step_size": 0.0}, "step_size must be > 0"),
        ({"start": "zeros"}, "unknown start 'zeros'; known: normal, uniform"),
        ({"distance": "l7"}, "unknown distance 'l7'"),
    ],
)
def test_out_of_range_arguments_are_refused(features, kwargs, message):
    with pytest.raises(InputError, match=message):
        ssp(images(7), features, **kwargs)


def test_images_must_be_a_batch_of_rgb(features):
    with pytest.raises(InputError, match=r"expected images of shape \(B, 3, H, W\), got \(3, 16, 16\)"):
        ssp(images(8)[0], features)


def test_ssp_starts_from_an_explicit_first_iterate():
    x = torch.full((1, 3, 4, 4), 0.5)
    init = x + torch.tensor([1.0, -1.0]).repeat(8)[:16].view(1, 1, 4, 4) * 0.01
    x_adv = ssp(x, nn.Identity(), eps=8 / 255, step_size=1 / 255, steps=20, init=init)
    assert torch.allclose(x_adv - x, (init - x).sign() * 8 / 255)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ssp_on_cuda_matches_cpu_with_a_cpu_generator(features):
    x = images(9)
    cpu = ssp(x, features, steps=3, generator=torch.Generator().manual_seed(0))
    gpu = ssp(x.cuda(), features.cuda(), steps=3, generator=torch.Generator().manual_seed(0))
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - x).abs().max() <= 16 / 255 + 1e-6
    # Same start noise; only float rounding can flip a gradient sign here and there.
    assert ((gpu.cpu() - cpu).abs() < 1e-6).float().mean() > 0.99
