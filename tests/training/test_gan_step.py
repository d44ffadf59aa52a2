"""Known answers of one GAN iteration (Algorithm 2) on tiny networks: each half-step does its own job only.

These pin the wiring of ``Trainer.purifier_step`` and ``Trainer.critic_step``: which batch the purifier reads,
which images the feature and pixel losses compare, which way the critic's loss pushes, and that each step
leaves the other network alone.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nrp.training import Trainer


def smooth_batch(size: int = 32, count: int = 4) -> torch.Tensor:
    """Low-frequency images in [0.2, 0.8]: what a denoiser can recover from noisy copies."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    return 0.2 + 0.6 * F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


def margin(trainer: Trainer, clean: torch.Tensor, purified: torch.Tensor) -> float:
    """``mean C(x) - mean C(P(x'))``, scored as the critic scores a training batch (one pass, batch statistics)."""
    with torch.no_grad():
        real, fake = trainer.critic(torch.cat((clean, purified))).chunk(2)
    return (real.mean() - fake.mean()).item()


class ReturnsClean(nn.Module):
    """A stand-in purifier whose output is the clean batch, whatever it is given (a perfect purifier)."""

    def __init__(self, clean: torch.Tensor) -> None:
        super().__init__()
        self.clean = clean
        self.zero = nn.Parameter(torch.zeros(()))  # gives the objective a gradient path, as a real purifier would

    def forward(self, perturbed: torch.Tensor) -> torch.Tensor:
        return self.clean + self.zero * perturbed


class Identity(nn.Module):
    """A stand-in purifier that returns its input unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.zero = nn.Parameter(torch.zeros(()))

    def forward(self, perturbed: torch.Tensor) -> torch.Tensor:
        return perturbed + self.zero


def test_pixel_only_training_brings_purified_images_closer_to_the_clean_than_the_perturbed(tiny_config):
    trainer = Trainer(tiny_config(perturbation="gaussian", eps=48, noise_std=48, loss_weights=[0.0, 1.0, 0.0], lr=5e-3, val=[]))
    clean = smooth_batch(size=16)  # no critic at alpha = 0, so any size will do
    perturbed = trainer.perturb_batch(clean, iteration=0)
    for _ in range(80):
        trainer.purifier_step(clean, perturbed)
    with torch.no_grad():
        purified = trainer.purifier(perturbed)
    assert F.mse_loss(purified, clean) < 0.5 * F.mse_loss(perturbed, clean)


def test_a_few_critic_steps_widen_the_gap_between_clean_and_purified_logits(tiny_config):
    trainer = Trainer(tiny_config(perturbation="gaussian", eps=48, noise_std=48, critic_lr=1e-3, val=[]))
    clean = smooth_batch()
    purified = trainer.perturb_batch(clean, iteration=0)  # what a poor purifier would return
    before = margin(trainer, clean, purified)
    for _ in range(5):
        trainer.critic_step(clean, purified)
    assert margin(trainer, clean, purified) > before + 0.5


def test_a_few_adversarial_purifier_steps_narrow_the_gap(tiny_config):
    trainer = Trainer(tiny_config(perturbation="gaussian", eps=48, noise_std=48, loss_weights=[1.0, 0.0, 0.0], lr=1e-3, critic_lr=1e-3, val=[]))
    clean = smooth_batch()
    perturbed = trainer.perturb_batch(clean, iteration=0)
    for _ in range(10):  # teach the critic first (clean against perturbed), so that its logits mean something
        trainer.critic_step(clean, perturbed)
    with torch.no_grad():
        before = margin(trainer, clean, trainer.purifier(perturbed))
    for _ in range(5):
        purified, _ = trainer.purifier_step(clean, perturbed)
    with torch.no_grad():
        after = margin(trainer, clean, trainer.purifier(perturbed))
    assert after < before - 0.3  # the purifier's output now looks more real to the critic than before


def test_the_feature_loss_is_zero_when_the_purifier_returns_the_clean_image(tiny_config):
    trainer = Trainer(tiny_config(val=[]))
    clean = smooth_batch()
    perturbed = trainer.perturb_batch(clean, iteration=0)
    trainer.purifier_step_module = ReturnsClean(clean)
    losses = trainer.purifier_step(clean, perturbed)[1]
    assert losses["purifier_feature"] == 0.0 and losses["purifier_pixel"] == 0.0


def test_the_feature_and_pixel_losses_of_an_identity_purifier_compare_the_perturbed_with_the_clean(tiny_config):
    trainer = Trainer(tiny_config(val=[]))
    clean = smooth_batch()
    perturbed = trainer.perturb_batch(clean, iteration=0)
    trainer.purifier_step_module = Identity()
    losses = trainer.purifier_step(clean, perturbed)[1]
    with torch.no_grad():
        expected_feature = (trainer.feature_extractor(perturbed) - trainer.feature_extractor(clean)).abs().mean().item()
    expected_pixel = ((perturbed - clean) ** 2).mean().item()
    assert expected_feature > 1e-3
    assert losses["purifier_feature"] == pytest.approx(expected_feature, rel=1e-5)
    assert losses["purifier_pixel"] == pytest.approx(expected_pixel, rel=1e-5)


def test_the_purifier_reads_the_perturbed_batch(tiny_config):
    trainer = Trainer(tiny_config(val=[]))
    seen: list[torch.Tensor] = []
    trainer.purifier.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach().clone()))
    clean = smooth_batch()
    trainer.train_step(clean)
    expected = trainer.perturb_batch(clean, iteration=0)
    assert len(seen) == 1
    assert torch.equal(seen[0], expected) and not torch.equal(seen[0], clean)


def snapshot(module: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    parameters = [p.detach().clone() for p in module.parameters()]
    gradients = [None if p.grad is None else p.grad.clone() for p in module.parameters()]
    return parameters, gradients


def assert_unchanged(module: nn.Module, before: tuple[list[torch.Tensor], list[torch.Tensor | None]]) -> None:
    parameters, gradients = before
    for parameter, old, old_grad in zip(module.parameters(), parameters, gradients):
        assert torch.equal(parameter, old)
        assert (parameter.grad is None and old_grad is None) or torch.equal(parameter.grad, old_grad)


def test_the_purifier_step_leaves_the_critic_weights_and_gradients_untouched(tiny_config):
    trainer = Trainer(tiny_config(val=[]))
    clean = smooth_batch()
    perturbed = trainer.perturb_batch(clean, iteration=0)
    trainer.critic_step(clean, perturbed)  # give the critic gradients to keep
    before = snapshot(trainer.critic)
    purifier_before = snapshot(trainer.purifier)[0]
    trainer.purifier_step(clean, perturbed)
    assert_unchanged(trainer.critic, before)
    assert all(p.requires_grad for p in trainer.critic.parameters())  # unfrozen again for its own step
    assert any(not torch.equal(a, b) for a, b in zip(purifier_before, trainer.purifier.parameters()))


def test_the_critic_step_leaves_the_purifier_weights_and_gradients_untouched(tiny_config):
    trainer = Trainer(tiny_config(val=[]))
    clean = smooth_batch()
    perturbed = trainer.perturb_batch(clean, iteration=0)
    purified, _ = trainer.purifier_step(clean, perturbed)
    assert not purified.requires_grad  # the critic learns on detached fakes
    before = snapshot(trainer.purifier)
    critic_before = snapshot(trainer.critic)[0]
    trainer.critic_step(clean, purified)
    assert_unchanged(trainer.purifier, before)
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, trainer.critic.parameters()))
