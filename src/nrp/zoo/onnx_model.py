"""Evaluating an ONNX classifier with ONNX Runtime, as an ``nn.Module`` that refuses to be differentiated."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from nrp.errors import InputError

INSTALL_HINT = "pip install 'nrp-purifier[onnx]' (or pip install onnxruntime)"


class OnnxModel(nn.Module):
    """An ONNX model run by ONNX Runtime: evaluation only, no gradients.

    The batch goes to the model as it is (``float32``, on the CPU through NumPy, the result back on the
    input's device), so the file must take ``(B, 3, H, W)`` [0, 1] images itself, with its own resizing
    and normalisation. ONNX Runtime computes no gradients: when the input requires them, the backward
    pass raises :class:`InputError`, so a gradient attack cannot silently get zeros; attack a PyTorch or
    TorchScript copy instead (or treat this one as a black box for transfer attacks).

    Args:
        path: the ``.onnx`` file; it must have exactly one input.

    Raises:
        InputError: onnxruntime is not installed, the file does not load, or it has several inputs.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise InputError(f"ONNX models need onnxruntime: {INSTALL_HINT}") from None
        from onnxruntime.capi import onnxruntime_pybind11_state as runtime_errors

        self.path = Path(path)
        load_errors = (runtime_errors.Fail, runtime_errors.InvalidArgument, runtime_errors.InvalidGraph,
                       runtime_errors.InvalidProtobuf, runtime_errors.NoSuchFile, runtime_errors.NotImplemented)
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=onnxruntime.get_available_providers())
        except load_errors as error:
            raise InputError(f"{path} is not a loadable ONNX model ({str(error).strip().splitlines()[0][:160]})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"{path} has {len(inputs)} inputs; a classifier takes one (the image batch)")
        self.input_name = inputs[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _OnnxRun.apply(x, self)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The first output of the model on batch ``x``, detached, on ``x``'s device and dtype."""
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        outputs = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(outputs[0]).to(x.device, x.dtype)

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}"


class _OnnxRun(torch.autograd.Function):
    """Forward through ONNX Runtime; backward raises, since there is no gradient to give."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, model: OnnxModel) -> torch.Tensor:
        ctx.path = model.path
        return model.run(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> None:
        raise InputError(f"the ONNX model {ctx.path} is evaluation-only (ONNX Runtime gives no gradients); "
                         "attack a PyTorch or TorchScript copy of it instead")
