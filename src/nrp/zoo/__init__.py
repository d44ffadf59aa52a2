"""The model zoo of the evaluation harness: ImageNet classifiers for [0, 1] images, preprocessing inside.

The paper's eight models (``inc_v3``, ``inc_v4``, ``incres_v2``, ``res152``, ``vgg19``, ``adv_inc_v3``,
``inc_v3_ens3``, ``ens_adv_incres_v2``), the PyPI-shipped ``efficientnet-lite0/1/2``, any torchvision
classification model and ``timm/<name>``; users' own TorchScript and ONNX files. See ``docs/models.md``.
"""

from nrp.zoo.classifier import ImageClassifier, resize_crop, scale_size
from nrp.zoo.loaders import as_classifier, load_model_file
from nrp.zoo.onnx_model import OnnxModel
from nrp.zoo.registry import MODELS, create_model, model_names, model_spec, register_model
from nrp.zoo.spec import ModelSpec, resolve_spec

__all__ = [
    "MODELS",
    "ImageClassifier",
    "ModelSpec",
    "OnnxModel",
    "as_classifier",
    "create_model",
    "load_model_file",
    "model_names",
    "model_spec",
    "register_model",
    "resize_crop",
    "resolve_spec",
    "scale_size",
]
