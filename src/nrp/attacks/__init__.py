"""Adversarial attacks on [0, 1] images: SSP (Algorithm 1), the transfer attacks of Tables 1 and 5, FFF, CDA's
generator, and the feature-level (FIA, NAA, ILPD) and input-transformation (BSR, Admix) transfer attacks that followed.

Classifier attacks are functions ``name(model, x, y=None, eps=16/255, *, ...)`` returning detached adversarial
images in [0, 1]; ``model`` may be a list of models (attacked through their mean logits). All share one loop,
:func:`iterative_attack`, whose options (random start, momentum, input diversity, gradient smoothing, targets)
are arguments. :data:`ATTACKS` maps each lower-case name to its function.
"""

from nrp.attacks.admix import admix, admix_copies
from nrp.attacks.autoattack import apgd, autoattack
from nrp.attacks.bsr import bsr, bsr_copies
from nrp.attacks.cda import cda, load_cda_generator
from nrp.attacks.cda_arch import CDAGenerator
from nrp.attacks.distances import DISTANCES, get_distance
from nrp.attacks.ensemble import Ensemble, as_model
from nrp.attacks.fff import apply_universal, fff, fff_objective, load_perturbation, save_perturbation, vgg_activations
from nrp.attacks.feature_level import fia, ila, ilpd, naa
from nrp.attacks.fgsm import fgsm, r_fgsm
from nrp.attacks.iterative import iterative_attack
from nrp.attacks.layers import LayerOutput, find_layer
from nrp.attacks.named import dim, dim_ti_fgsm, i_fgsm, mi_dim_ti_fgsm, mi_fgsm, mi_ti_fgsm, pgd, ti_fgsm
from nrp.attacks.registry import ATTACKS, get_attack, register
from nrp.attacks.ssp import ssp
from nrp.attacks.targets import random_targets
from nrp.attacks.through_defense import GRADIENT_MODES, DefendedModel
from nrp.attacks.transforms import gaussian_kernel1d, input_diversity, smooth_gradient

register("ssp")(ssp)

__all__ = [
    "DefendedModel",
    "GRADIENT_MODES",
    "ATTACKS",
    "CDAGenerator",
    "cda",
    "load_cda_generator",
    "LayerOutput",
    "admix",
    "admix_copies",
    "apgd",
    "autoattack",
    "bsr",
    "bsr_copies",
    "fia",
    "find_layer",
    "ila",
    "ilpd",
    "naa",
    "DISTANCES",
    "Ensemble",
    "apply_universal",
    "as_model",
    "dim",
    "dim_ti_fgsm",
    "fff",
    "fff_objective",
    "fgsm",
    "gaussian_kernel1d",
    "get_attack",
    "get_distance",
    "i_fgsm",
    "input_diversity",
    "iterative_attack",
    "load_perturbation",
    "mi_dim_ti_fgsm",
    "mi_fgsm",
    "mi_ti_fgsm",
    "pgd",
    "r_fgsm",
    "random_targets",
    "register",
    "save_perturbation",
    "smooth_gradient",
    "ssp",
    "ti_fgsm",
    "vgg_activations",
]
