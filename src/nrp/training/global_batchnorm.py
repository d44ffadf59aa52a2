"""Batch-norm over the global batch when training on many processes, so DDP normalises like one process.

The critic (Section 3.3) normalises with batch-norm over real and purified images together. Under
DistributedDataParallel each rank sees only its slice (at the paper's batch 16 on 4 GPUs, 4 real and 4 purified
images), so plain ``BatchNorm2d`` would normalise the critic differently from a single process.
:class:`GlobalBatchNorm2d` all-reduces the per-channel sums (two passes: mean, then the centred squares), so
its output, gradients and running statistics are those of ``BatchNorm2d`` on the concatenated global batch.
``torch.nn.SyncBatchNorm`` does the same on GPUs only (it refuses CPU tensors), which would leave the gloo test
of two processes against one unable to run the code the GPUs run; this one runs on both.
"""

from __future__ import annotations

import torch
from torch import nn

from nrp.distributed import all_reduce_sum, is_distributed


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training-mode statistics are taken over all ranks' batches.

    Same parameters, buffers and state-dict keys as ``BatchNorm2d``; outside a process group of two or more
    ranks, or in eval mode, it is exactly ``BatchNorm2d``. Statistics are computed in float32 at least, whatever the
    input dtype (as under autocast), and the output has the input's dtype.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``; ``B`` may differ between ranks.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        values = x.to(torch.promote_types(x.dtype, torch.float32))
        local_count = values.new_tensor([values.numel() / values.shape[1]])
        sums = all_reduce_sum(torch.cat((values.sum((0, 2, 3)), local_count)))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = values - mean[None, :, None, None]
        variance = all_reduce_sum((centred * centred).sum((0, 2, 3))) / count
        if self.track_running_stats:
            self._update_running_statistics(mean.detach(), variance.detach(), count)
        normalised = centred * torch.rsqrt(variance + self.eps)[None, :, None, None]
        if self.affine:
            normalised = normalised * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return normalised.to(x.dtype)

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, variance: torch.Tensor, count: torch.Tensor) -> None:
        """As ``BatchNorm2d``: exponential (or, with ``momentum=None``, cumulative) averages, unbiased variance."""
        self.num_batches_tracked += 1
        factor = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
        unbiased = variance * count / (count - 1).clamp(min=1)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)


def use_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` inside ``module`` (in place) by a :class:`GlobalBatchNorm2d` with its state.

    Returns ``module``. Parameters keep their identity, so optimisers built on ``module.parameters()`` still
    hold them.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                replacement.weight, replacement.bias = child.weight, child.bias
            if child.track_running_stats:
                replacement.running_mean, replacement.running_var = child.running_mean, child.running_var
                replacement.num_batches_tracked = child.num_batches_tracked
            replacement.train(child.training)
            setattr(module, name, replacement)
        else:
            use_global_batchnorm(child)
    return module
