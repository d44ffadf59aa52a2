"""The collectives training relies on, on two gloo ranks: global means with their gradients, and broadcasts."""

from __future__ import annotations

import torch

from nrp.distributed import DistributedContext, broadcast_from_main, global_mean

FULL = torch.arange(6, dtype=torch.float64) ** 2  # the global batch; rank r holds FULL[3r : 3r + 3]


def _mean_and_gradient(context: DistributedContext) -> tuple[torch.Tensor, torch.Tensor]:
    values = FULL[3 * context.rank : 3 * context.rank + 3].clone().requires_grad_(True)
    mean = global_mean(values)
    # A loss whose rank-r part depends on the global mean: sum over ranks of (local values - global mean)^2.
    ((values - mean) ** 2).sum().backward()
    return mean.detach(), values.grad


def test_global_mean_is_the_mean_of_the_whole_batch_with_the_single_process_gradient(two_ranks):
    results = two_ranks(_mean_and_gradient)
    full = FULL.clone().requires_grad_(True)
    ((full - full.mean()) ** 2).sum().backward()
    for rank, (mean, gradient) in enumerate(results):
        assert torch.allclose(mean, FULL.mean(), rtol=0, atol=1e-12)
        assert torch.allclose(gradient, full.grad[3 * rank : 3 * rank + 3], rtol=0, atol=1e-12)


def test_global_mean_without_a_process_group_is_the_plain_mean():
    assert global_mean(FULL) == FULL.mean()


def _receive(context: DistributedContext):
    rank = context.rank  # every rank makes its own payload; only rank 0's may arrive
    payload = {"weights": {"w": torch.randn(2, 3) + rank, "step": torch.tensor(7 + rank)}, "list": [1, torch.full((2,), rank, dtype=torch.uint8)],
               "name": f"rank {rank}"}
    return broadcast_from_main(payload if context.is_main else None, context), payload


def test_broadcast_gives_every_rank_the_main_ranks_structure_and_tensors(two_ranks):
    (main_received, main_sent), (other_received, _) = two_ranks(_receive)
    assert other_received["name"] == "rank 0" and other_received["list"][0] == 1
    for a, b in ((other_received["weights"]["w"], main_sent["weights"]["w"]), (other_received["weights"]["step"], main_sent["weights"]["step"]),
                 (other_received["list"][1], main_sent["list"][1])):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert torch.equal(main_received["weights"]["w"], main_sent["weights"]["w"])


def test_broadcast_on_one_process_returns_the_payload_itself():
    payload = {"a": torch.zeros(1)}
    assert broadcast_from_main(payload, DistributedContext()) is payload
