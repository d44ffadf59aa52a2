"""Running under ``torchrun`` (training and evaluation): process-group set-up, this process's rank and device, and tear-down."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from nrp.devices import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, computing on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True under ``torchrun`` with more than one process."""
        return self.world_size > 1


def setup(device_name: str) -> DistributedContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); otherwise stay single.

    CUDA processes use NCCL and the GPU numbered ``LOCAL_RANK``; CPU processes use gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, device=device)


def teardown(context: DistributedContext) -> None:
    """Leave the process group, if one was joined."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait until every process of ``context`` gets here (nothing to wait for in a single process)."""
    if context.distributed:
        dist.barrier()


def is_distributed() -> bool:
    """True inside a process group of two or more ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``values`` over all ranks, differentiable; ``values`` itself when not distributed.

    The backward pass sums the incoming gradients over the ranks too, so a loss that depends on the global
    sum, averaged over ranks by DistributedDataParallel, gets the gradient of the single-process loss.
    """
    if not is_distributed():
        return values
    return _AllReduceSum.apply(values)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx, values: torch.Tensor) -> torch.Tensor:
        total = values.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        total = gradient.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


def global_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over every element on every rank (the global batch), differentiable.

    Equals ``torch.cat(all ranks' values).mean()`` for any split; a scalar of ``values``' dtype.
    """
    if not is_distributed():
        return values.mean()
    totals = all_reduce_sum(torch.stack((values.sum(), values.new_tensor(float(values.numel())))))
    return totals[0] / totals[1].detach()


def broadcast_from_main(payload: Any, context: DistributedContext) -> Any:
    """Rank 0's ``payload`` (nested dicts, lists and tuples of tensors and plain values) on every rank.

    Other ranks pass anything (typically ``None``) and receive rank 0's structure, each tensor with its
    shape, dtype and device type; rank 0 gets its own objects back. Tensors travel by ``broadcast`` (through
    ``context.device``), the rest pickled, so ranks on nodes without a shared disk get the same state.
    """
    if not context.distributed:
        return payload
    tensors: list[torch.Tensor] = []

    def to_slot(tensor: torch.Tensor) -> _TensorSlot:
        tensors.append(tensor)
        return _TensorSlot(len(tensors) - 1, tuple(tensor.shape), tensor.dtype, tensor.device.type)

    box = [_map_leaves(payload, torch.Tensor, to_slot) if context.is_main else None]
    dist.broadcast_object_list(box, src=0, device=context.device if context.device.type == "cuda" else None)
    slots: list[_TensorSlot] = []
    _map_leaves(box[0], _TensorSlot, slots.append)
    received: list[torch.Tensor] = []
    for slot in slots:
        if context.is_main:
            dist.broadcast(tensors[slot.index].to(context.device), src=0)
            received.append(tensors[slot.index])
        else:
            tensor = torch.empty(slot.shape, dtype=slot.dtype, device=context.device)
            dist.broadcast(tensor, src=0)
            received.append(tensor.to(slot.device))
    return _map_leaves(box[0], _TensorSlot, lambda slot: received[slot.index])


def _map_leaves(value: Any, kind: type, function: Callable[[Any], Any]) -> Any:
    """``value`` with every leaf of type ``kind`` inside nested dicts, lists and tuples replaced by ``function(leaf)``."""
    if isinstance(value, kind):
        return function(value)
    if isinstance(value, dict):
        return {key: _map_leaves(item, kind, function) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_leaves(item, kind, function) for item in value)
    return value


@dataclass(frozen=True)
class _TensorSlot:
    """Where a tensor sits in a broadcast payload, and what to allocate for it on the receiving ranks."""

    index: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: str
