"""Adversarial attacks on [0, 1] images: the label-free SSP (Algorithm 1), its feature distances, FGSM."""

from nrp.attacks.distances import DISTANCES, get_distance
from nrp.attacks.fgsm import fgsm
from nrp.attacks.ssp import ssp

__all__ = ["DISTANCES", "fgsm", "get_distance", "ssp"]
