"""GlobalBatchNorm2d on two gloo ranks equals BatchNorm2d on the concatenated batch: outputs, gradients, statistics."""

from __future__ import annotations

import torch
from torch import nn

from nrp.distributed import DistributedContext
from nrp.training.critic import Critic
from nrp.training.global_batchnorm import GlobalBatchNorm2d, use_global_batchnorm

generator = torch.Generator().manual_seed(0)
BATCH = torch.randn(6, 3, 5, 4, generator=generator, dtype=torch.float64) * 2 + 1  # rank r holds rows 3r .. 3r+2
WEIGHTS = torch.randn(6, 3, 5, 4, generator=generator, dtype=torch.float64)  # a loss sum(w * y) with uneven weights


def reference_layer() -> nn.BatchNorm2d:
    layer = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        layer.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    return layer


def _forward_backward(layer: nn.Module, x: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    y = layer(x)
    (w * y).sum().backward()
    return {"output": y.detach(), "input_grad": x.grad, "weight_grad": layer.weight.grad, "bias_grad": layer.bias.grad,
            "running_mean": layer.running_mean.clone(), "running_var": layer.running_var.clone()}


def _on_rank(context: DistributedContext) -> dict[str, torch.Tensor]:
    rows = slice(3 * context.rank, 3 * context.rank + 3)
    layer = use_global_batchnorm(nn.Sequential(reference_layer()))[0]
    assert isinstance(layer, GlobalBatchNorm2d)
    return _forward_backward(layer, BATCH[rows], WEIGHTS[rows])


def test_two_ranks_normalise_like_one_process_on_the_whole_batch(two_ranks):
    ranks = two_ranks(_on_rank)
    expected = _forward_backward(reference_layer(), BATCH, WEIGHTS)
    for rank, result in enumerate(ranks):
        rows = slice(3 * rank, 3 * rank + 3)
        assert torch.allclose(result["output"], expected["output"][rows], atol=1e-12)
        assert torch.allclose(result["input_grad"], expected["input_grad"][rows], atol=1e-12)
        assert torch.allclose(result["running_mean"], expected["running_mean"], atol=1e-12)
        assert torch.allclose(result["running_var"], expected["running_var"], atol=1e-12)
    # Parameter gradients are per rank; their sum (what DDP all-reduces, before averaging) is the whole batch's.
    for name in ("weight_grad", "bias_grad"):
        assert torch.allclose(ranks[0][name] + ranks[1][name], expected[name], atol=1e-12)


def test_on_one_process_it_is_batchnorm_and_the_conversion_keeps_the_state():
    critic = Critic(width=4)
    reference = {key: value.clone() for key, value in critic.state_dict().items()}
    parameters = list(critic.parameters())
    use_global_batchnorm(critic)
    assert not any(type(m) is nn.BatchNorm2d for m in critic.modules())
    assert sum(isinstance(m, GlobalBatchNorm2d) for m in critic.modules()) == 9
    assert all(a is b for a, b in zip(parameters, critic.parameters()))
    assert all(torch.equal(reference[key], value) for key, value in critic.state_dict().items())
    layer = reference_layer()
    converted = use_global_batchnorm(nn.Sequential(reference_layer()))[0]
    a, b = _forward_backward(layer, BATCH, WEIGHTS), _forward_backward(converted, BATCH, WEIGHTS)
    assert all(torch.equal(a[key], b[key]) for key in a)
