"""CDA (Naseer et al., NeurIPS 2019) as an attack: a trained generator's output, projected into the eps ball."""

from __future__ import annotations

import os

import torch

from nrp.attacks import defaults
from nrp.attacks.cda_arch import CDAGenerator
from nrp.attacks.checks import check_eps, check_images
from nrp.attacks.registry import register
from nrp.checkpoints import load_weights, read_checkpoint


def load_cda_generator(
    path: str | os.PathLike, inception: bool = False, device: str | torch.device = "cpu"
) -> CDAGenerator:
    """A :class:`CDAGenerator` with the weights of ``path``, frozen, in eval mode (dropout off, BN's statistics).

    Reads the authors' released ``.pth`` state dicts (e.g. ``netG_-1_img_incv3_imagenet_0_rl.pth``) and state
    dicts saved from torchattack's CDA generator unchanged; a mismatch raises one line naming the keys.

    Args:
        path: the weights file.
        inception: the generator was trained against Inception-v3 (crops its output to 299 px from 300).
        device: where the generator runs.
    """
    network = CDAGenerator(inception=inception)
    load_weights(network, read_checkpoint(path).state_dict, str(path), target="the CDA generator")
    return network.to(device).eval().requires_grad_(False)


@register("cda")
def cda(x: torch.Tensor, generator_network: CDAGenerator, eps: float = defaults.EPS) -> torch.Tensor:
    """CDA's adversarial images: ``clip(G(x), x - eps, x + eps)`` clipped to [0, 1] (Naseer et al., Sec. 3.3).

    The generator is trained for its own budget (the authors' 10/255 and the NRP paper's Table 2 at 8 and
    16/255 use the same generators), so the projection after it sets the budget. The NRP paper's Table 2
    attacks with generators trained against Inc-v3 (classification) and Res-152 (detection, segmentation).

    Args:
        x: clean images ``(B, 3, H, W)`` in [0, 1] (299 px for an Inception generator, else multiples of 4).
        generator_network: from :func:`load_cda_generator` (or any [0, 1] -> [0, 1] image generator).
        eps: L-inf budget, [0, 1] units.

    Returns:
        detached adversarial images shaped like ``x``.
    """
    check_images(x)
    check_eps(eps)
    with torch.no_grad():
        unrestricted = generator_network(x)
        return torch.minimum(torch.maximum(unrestricted, x - eps), x + eps).clamp_(0.0, 1.0)
