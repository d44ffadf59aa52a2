"""The critic C_phi: shapes at every crop size, the ESRGAN-style layout, a hand-counted size, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nrp.training.critic import Critic


@pytest.fixture
def tiny_critic() -> Critic:
    torch.manual_seed(0)
    return Critic(width=2)


def convs(critic: Critic) -> list[nn.Conv2d]:
    return [m for m in critic.modules() if isinstance(m, nn.Conv2d)]


# --- shapes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(128, 128), (96, 96), (64, 64), (200, 160), (32, 32)])
def test_one_logit_per_image_at_any_crop(tiny_critic, height, width):
    logits = tiny_critic(torch.rand(3, 3, height, width))
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()


def test_default_width_at_training_crop():
    torch.manual_seed(0)
    critic = Critic()
    assert critic.width == 64
    logits = critic(torch.rand(2, 3, 128, 128))
    assert logits.shape == (2,)


def test_width_is_read_back_and_scales_channels():
    critic = Critic(width=3)
    assert critic.width == 3
    rebuilt = Critic(width=critic.width)
    rebuilt.load_state_dict(critic.state_dict())  # constructor arguments alone rebuild the layout
    outputs = [c.out_channels for c in convs(critic)]
    assert outputs == [3, 3, 6, 6, 12, 12, 24, 24, 24, 24]
    assert critic.classifier[0].in_features == 24 * 16


@pytest.mark.parametrize("height, width", [(128, 128), (96, 64), (256, 160)])
def test_map_before_pooling_is_one_thirty_second_of_the_input(tiny_critic, height, width):
    features = tiny_critic.features(torch.rand(2, 3, height, width))
    assert features.shape == (2, 8 * 2, height // 32, width // 32)


def test_pooling_is_the_identity_at_128():
    critic = Critic(width=2).eval()
    features = critic.features(torch.rand(2, 3, 128, 128))
    assert torch.equal(critic.pool(features), features)


@pytest.mark.parametrize("height, width", [(16, 16), (31, 64), (64, 31)])
def test_inputs_smaller_than_32_px_raise(tiny_critic, height, width):
    with pytest.raises(ValueError, match="at least 32x32"):
        tiny_critic(torch.rand(2, 3, height, width))


@pytest.mark.parametrize("shape", [(3, 64, 64), (2, 1, 64, 64), (2, 4, 64, 64)])
def test_non_rgb_batches_raise(tiny_critic, shape):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        tiny_critic(torch.rand(shape))


def test_non_positive_width_raises():
    with pytest.raises(ValueError, match="width"):
        Critic(width=0)


# --- layout -----------------------------------------------------------------------------------------------


def test_five_stride_two_convolutions_halve_the_resolution(tiny_critic):
    strided = [c for c in convs(tiny_critic) if c.stride == (2, 2)]
    assert len(strided) == 5
    assert all(c.kernel_size == (4, 4) and c.padding == (1, 1) for c in strided)
    plain = [c for c in convs(tiny_critic) if c.stride == (1, 1)]
    assert len(plain) == 5
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in plain)


def test_batch_norm_after_every_convolution_but_the_first(tiny_critic):
    layers = list(tiny_critic.features)
    conv_positions = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in tiny_critic.modules()) == 9
    assert isinstance(layers[conv_positions[0] + 1], nn.LeakyReLU)  # first conv: bias, no batch-norm
    assert layers[conv_positions[0]].bias is not None
    for position in conv_positions[1:]:
        assert isinstance(layers[position + 1], nn.BatchNorm2d)
        assert isinstance(layers[position + 2], nn.LeakyReLU)
        assert layers[position].bias is None  # the batch-norm's shift replaces it


def test_every_activation_is_leaky_relu_with_slope_0_2(tiny_critic):
    activations = [m for m in tiny_critic.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Sigmoid))]
    assert len(activations) == 11  # ten convolutions + the hidden fully connected layer
    assert all(isinstance(a, nn.LeakyReLU) and a.negative_slope == 0.2 for a in activations)


def test_parameter_count_of_the_default_critic_by_hand():
    def conv(c_in, c_out, k, bias):
        return c_in * c_out * k * k + (c_out if bias else 0)

    def bn(c):
        return 2 * c  # weight and bias; running statistics are buffers

    expected = (
        conv(3, 64, 3, True) + conv(64, 64, 4, False) + bn(64)  # block 0: 1,792 + 65,536 + 128
        + conv(64, 128, 3, False) + bn(128) + conv(128, 128, 4, False) + bn(128)  # 73,728 + 256 + 262,144 + 256
        + conv(128, 256, 3, False) + bn(256) + conv(256, 256, 4, False) + bn(256)  # 294,912 + 512 + 1,048,576 + 512
        + conv(256, 512, 3, False) + bn(512) + conv(512, 512, 4, False) + bn(512)  # 1,179,648 + ... + 4,194,304 + ...
        + conv(512, 512, 3, False) + bn(512) + conv(512, 512, 4, False) + bn(512)  # 2,359,296 + ... + 4,194,304 + ...
        + (512 * 4 * 4 * 100 + 100)  # Linear(8192 -> 100): 819,300
        + (100 * 1 + 1)  # Linear(100 -> 1): 101
    )
    assert expected == 14_499_401
    assert sum(p.numel() for p in Critic().parameters()) == expected


# --- behaviour --------------------------------------------------------------------------------------------


def test_gradient_reaches_the_input(tiny_critic):
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    tiny_critic(x).sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in tiny_critic.parameters())


def test_eval_mode_scores_each_image_independently_of_the_batch(tiny_critic):
    tiny_critic.train()
    tiny_critic(torch.rand(4, 3, 64, 64))  # move the running statistics away from their initial values
    tiny_critic.eval()
    images = torch.rand(3, 3, 64, 64)
    together = tiny_critic(images)
    alone = torch.stack([tiny_critic(images[i : i + 1])[0] for i in range(3)])
    torch.testing.assert_close(together, alone)
