"""nrp: self-supervised adversarial robustness (Naseer et al., CVPR 2020).

The Self-supervised Perturbation attack (:func:`ssp`, Algorithm 1), the Neural Representation Purifier
networks (:class:`NRP`, :class:`NRPResG`) and the :class:`Purifier` defense that puts one in front of any
vision model. Images are float tensors ``(B, 3, H, W)`` in [0, 1] throughout.
"""

from importlib.metadata import PackageNotFoundError, version

from nrp.attacks import ssp
from nrp.features import FeatureExtractor, build_feature_extractor
from nrp.purifiers import NRP, NRPResG, Purifier, create_network, load_network, save_network

try:
    __version__ = version("nrp-purifier")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "NRP",
    "NRPResG",
    "FeatureExtractor",
    "Purifier",
    "__version__",
    "build_feature_extractor",
    "create_network",
    "load_network",
    "save_network",
    "ssp",
]
