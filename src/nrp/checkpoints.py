"""Reading and writing weight files safely: ``.safetensors`` and ``.pth``/``.pt`` state dicts.

``.pth`` files are read with ``torch.load(weights_only=True)``, so a checkpoint can never run code.
Checkpoints written by this project describe themselves: besides the tensors they carry the architecture
name and its constructor arguments (``.pth``: entries of the saved dict; ``.safetensors``: the header's
string metadata), so loading needs no other information, and a SHA-256 of their tensors that every read
verifies (:mod:`nrp.integrity`); ``.pth`` zips are CRC-checked and all weights checked for NaN and infinity.
Files without a recorded digest (from other projects) are read unverified beyond those two checks.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from nrp.atomic import atomic_path
from nrp.errors import CheckpointError
from nrp.integrity import DIGEST_KEY, check_finite, check_zip, tensor_digest, verify_digest

# Keys under which other trainers nest the state dict (BasicSR uses "params"/"params_ema").
NESTED_STATE_KEYS = ("state_dict", "params_ema", "params", "model")
# How many offending keys an error message names before it summarises the rest.
KEYS_SHOWN = 3
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
ARCHITECTURE_KEY = "architecture"
ARGUMENTS_KEY = "arguments"


@dataclass
class Checkpoint:
    """The tensors of a weights file, and the architecture it declares (``None`` for a plain state dict)."""

    state_dict: dict[str, torch.Tensor]
    architecture: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a weights file into a :class:`Checkpoint`; any problem becomes one-line :class:`CheckpointError`.

    Accepts a plain state dict (the authors' ``NRP.pth``), a dict nesting one under ``state_dict``,
    ``params_ema``, ``params`` or ``model``, and this project's self-describing files. A ``module.`` prefix
    left by ``DataParallel`` is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        checkpoint = _read_safetensors(path, map_location)
    else:
        checkpoint = _read_torch(path, map_location)
    if not checkpoint.state_dict:
        raise CheckpointError(f"{path} holds no tensors: it is not a state dict")
    check_finite(checkpoint.state_dict, path)
    checkpoint.state_dict = _strip_prefix(checkpoint.state_dict, "module.")
    return checkpoint


def write_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
    """Write ``checkpoint`` atomically; the format follows the suffix (``.safetensors``, else ``.pth``).

    ``extra`` entries (optimiser state, step, RNG state of a training run) are stored beside the weights in
    ``.pth`` files; ``.safetensors`` holds tensors and string metadata only, so ``extra`` is refused there.
    Either way the file records the SHA-256 of all its tensors (:func:`nrp.integrity.tensor_digest`).
    """
    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in checkpoint.state_dict.items()}
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            if extra:
                raise CheckpointError(f"{path}: .safetensors stores weights only; use .pth for training state")
            metadata = {ARCHITECTURE_KEY: checkpoint.architecture or "", ARGUMENTS_KEY: json.dumps(checkpoint.arguments),
                        DIGEST_KEY: tensor_digest(state)}
            save_file(state, str(tmp), metadata=metadata)
        else:
            payload = {ARCHITECTURE_KEY: checkpoint.architecture, ARGUMENTS_KEY: checkpoint.arguments, "state_dict": state}
            payload.update(extra or {})
            payload[DIGEST_KEY] = tensor_digest(payload)
            torch.save(payload, tmp)


def load_weights(
    module: nn.Module,
    state_dict: dict[str, torch.Tensor],
    source: str,
    target: str | None = None,
    ignore: Collection[str] = (),
) -> None:
    """Copy ``state_dict`` into ``module`` strictly; any mismatch raises one :class:`CheckpointError` line.

    Args:
        module: receives the weights.
        state_dict: the tensors read from ``source``.
        source: the file name, for the message.
        target: how the message names ``module`` (default: its class name).
        ignore: keys of ``state_dict`` that ``module`` may lack (e.g. layers past a truncated backbone).
    """
    expected = module.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected and key not in ignore]
    mismatched = [
        f"{key} (file {tuple(state_dict[key].shape)}, network {tuple(value.shape)})"
        for key, value in expected.items()
        if key in state_dict and state_dict[key].shape != value.shape
    ]
    problems = [
        _describe(label, keys)
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
        if keys
    ]
    if problems:
        raise CheckpointError(f"{source} does not fit {target or type(module).__name__}: {'; '.join(problems)}")
    module.load_state_dict({key: state_dict[key] for key in expected})


def _describe(label: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:KEYS_SHOWN])
    more = f" and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else ""
    return f"{len(keys)} {label} ({shown}{more})"


def _read_safetensors(path: Path, map_location: str | torch.device) -> Checkpoint:
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable .safetensors file ({_first_line(error)})") from None
    if metadata.get(DIGEST_KEY):
        verify_digest(state, metadata[DIGEST_KEY], path)
    try:
        arguments = json.loads(metadata.get(ARGUMENTS_KEY) or "{}")
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its '{ARGUMENTS_KEY}' metadata is not valid JSON") from None
    return Checkpoint(state, metadata.get(ARCHITECTURE_KEY) or None, arguments)


def load_torch_payload(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure becomes a one-line :class:`CheckpointError`.

    The weights-only unpickler accepts tensors, numbers, strings and containers of them, never code:
    a file that holds anything else is refused, naming the object it holds. The zip's CRCs are checked
    first, and a dict that records a ``sha256`` of its tensors is verified against it (the entry is removed).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    check_zip(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", str(error), re.IGNORECASE)
        if refused is not None:
            raise CheckpointError(
                f"{path} was refused by the safe loader: it holds {refused.group(1)}, which could run code"
            ) from None
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({_unpickler_reason(error)})") from None
    # Text or other non-pickle bytes reach torch's legacy unpickler, which fails with KeyError/IndexError.
    except (KeyError, IndexError):
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (not a torch.save file)") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({_first_line(error)})") from None
    if isinstance(payload, dict) and isinstance(payload.get(DIGEST_KEY), str):
        verify_digest({k: v for k, v in payload.items() if k != DIGEST_KEY}, payload.pop(DIGEST_KEY), path)
    return payload


def _read_torch(path: Path, map_location: str | torch.device) -> Checkpoint:
    payload = load_torch_payload(path, map_location)
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a state dict")
    architecture = payload.get(ARCHITECTURE_KEY) if isinstance(payload.get(ARCHITECTURE_KEY), str) else None
    arguments = payload.get(ARGUMENTS_KEY) if isinstance(payload.get(ARGUMENTS_KEY), dict) else {}
    for key in NESTED_STATE_KEYS:
        if isinstance(payload.get(key), dict):
            payload = payload[key]
            break
    state = {k: v for k, v in payload.items() if isinstance(v, torch.Tensor)}
    return Checkpoint(state, architecture, arguments)


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return state


def _unpickler_reason(error: BaseException) -> str:
    """The line after torch's "WeightsUnpickler error:" boilerplate, which says what was wrong."""
    after = ANSI_ESCAPE.sub("", str(error)).partition("WeightsUnpickler error:")[2]
    lines = [line.strip() for line in after.splitlines() if line.strip()]
    return lines[0] if lines else _first_line(error)


def _first_line(error: BaseException) -> str:
    text = ANSI_ESCAPE.sub("", str(error)).strip().splitlines()
    return text[0] if text else type(error).__name__
