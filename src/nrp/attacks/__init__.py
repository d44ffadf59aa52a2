"""Adversarial attacks on [0, 1] images: the label-free SSP (Algorithm 1) and its feature distances."""

from nrp.attacks.distances import DISTANCES, get_distance
from nrp.attacks.ssp import ssp

__all__ = ["DISTANCES", "get_distance", "ssp"]
