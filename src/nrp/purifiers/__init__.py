"""Purifier networks (NRP, NRP_resG, NRP-Lite, NRP-MS), the purifier defense, and loading/saving their weights."""

from nrp.purifiers.dynamic import dynamic_noise
from nrp.purifiers.lite_arch import NRPLite
from nrp.purifiers.loading import load_network, save_network
from nrp.purifiers.multiscale_arch import MultiScalePurifier
from nrp.purifiers.nrp_arch import NRP
from nrp.purifiers.purifier import Purifier
from nrp.purifiers.registry import PURIFIERS, architecture_of, create_network, register_purifier
from nrp.purifiers.resg_arch import NRPResG
from nrp.purifiers.shipped import shipped_weights
from nrp.purifiers.tiling import purify_tiled

__all__ = [
    "MultiScalePurifier",
    "NRP",
    "NRPLite",
    "NRPResG",
    "PURIFIERS",
    "Purifier",
    "architecture_of",
    "create_network",
    "dynamic_noise",
    "load_network",
    "purify_tiled",
    "register_purifier",
    "save_network",
    "shipped_weights",
]
