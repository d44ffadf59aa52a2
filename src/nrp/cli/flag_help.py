"""What each flag read off an attack's or defense's keyword arguments does, for ``--help``.

Keyed by parameter name; the default (in 0-255 units for pixel quantities) is appended by
:mod:`nrp.cli.signature_flags`. A parameter whose default is ``None`` says here what ``None`` means.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from nrp.purifiers import PURIFIERS

PARAMETER_HELP = {
    # attacks
    "eps": "L-inf budget of the perturbation",
    "step_size": "size of each signed-gradient step",
    "steps": "iterations (of the attack, or of TVM's solver)",
    "alpha": "size of R-FGSM's random first step (default: eps / 3)",
    "random_start": "start from a uniformly random point of the eps ball (--no-random-start: from the image)",
    "momentum": "decay mu of the accumulated gradient (MI-FGSM; 0: no momentum)",
    "diversity_prob": "probability of resizing and padding the input at each step (DIM's input diversity)",
    "diversity_scale": "resize range of DIM's input diversity, as a share of the image side: < 1 shrinks, > 1 enlarges, never 1",
    "ti_kernel": "side of TI's Gaussian kernel that smooths the gradient, pixels (odd)",
    # defenses
    "quality": "JPEG quality, 1-100",
    "subsampling": "chroma subsampling of the JPEG encoder (4:4:4, 4:2:2 or 4:2:0)",
    "rounding": "how quantised DCT coefficients are rounded: straight_through (exact forward) or cubic (Shin & Song)",
    "weight": "the paper's TVM weight (10 or 30; lamb = 0.3 / weight); give this or --lamb (default: lamb 0.03)",
    "lamb": "TVM's total-variation weight lambda; give this or --weight (default: 0.03)",
    "keep_prob": "share of pixels TVM keeps before reconstructing the rest",
    "norm": "p of the total-variation norm TV_p (1 or 2)",
    "window": "side of the median filter's window, pixels (odd)",
    "output_size": "side of R&P's padded output, pixels, larger than the input (default: 331/299 of the input side)",
    "bits": "bits kept per colour channel",
    "sigma": "standard deviation of the Gaussian kernel, pixels",
    "kernel_size": "side of the Gaussian kernel, pixels, odd (default: 2 * ceil(3 * sigma) + 1)",
    "weights": "purifier weights file (.pth/.pt/.safetensors): the authors' NRP.pth or one nrp wrote (the shipped NRP-Lite is nrp_lite_shipped)",
    "architecture": f"{', '.join(sorted(PURIFIERS))}: only a check against what the file holds (default: read from the file)",
    "tile_size": "purify images larger than N pixels tile by tile (default: never tile)",
    "tile_overlap": "context and blend width between tiles, pixels",
    "noise_std": "standard deviation of the dynamic defense's Gaussian noise",
    "noise_eps": "L-inf radius the noisy input is projected into before purifying",
}


def parameter_help(function: Callable, name: str) -> str | None:
    """What parameter ``name`` of ``function`` does: :data:`PARAMETER_HELP`, else its docstring's ``Args:`` entry.

    reStructuredText markup (````x````, ``:func:`x```) is dropped, so ``--help`` shows plain text.
    """
    if name in PARAMETER_HELP:
        return PARAMETER_HELP[name]
    documented = _docstring_arguments(function).get(name)
    return plain_text(documented).rstrip(".") if documented else None


def plain_text(text: str) -> str:
    """``text`` without reStructuredText roles and literals, on one line.

    Example:
        >>> plain_text("one step of ``eps``: see :func:`~nrp.attacks.fgsm`")
        'one step of eps: see fgsm'
    """
    text = re.sub(r":[a-z]+:`~?([^`]*)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return " ".join(text.replace("``", "").split())


def _docstring_arguments(function: Callable) -> dict[str, str]:
    """``{name: description}`` from a Google-style ``Args:`` section (of ``__init__`` too, for a class)."""
    docs = [inspect.getdoc(function) or ""]
    if inspect.isclass(function):
        docs.append(inspect.getdoc(function.__init__) or "")
    entries: dict[str, str] = {}
    for doc in docs:
        section = re.search(r"^Args:\n((?:[ \t]+.*\n?|\n)*)", doc, flags=re.MULTILINE)
        if section is None:
            continue
        current = None
        for line in section.group(1).splitlines():
            entry = re.match(r"^    (\w+)(?: \([^)]*\))?: (.*)$", line)
            if entry:
                current = entry.group(1)
                entries[current] = entry.group(2)
            elif current and line.startswith("        "):
                entries[current] += " " + line.strip()
    return entries
