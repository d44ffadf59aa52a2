"""CDA as an ``nrp eval`` attack: its generator runs inside the protocol, once per eps, with no source model."""

from __future__ import annotations

import pytest
import torch

from nrp.attacks import CDAGenerator, cda, load_cda_generator
from nrp.distributed import DistributedContext
from nrp.errors import InputError
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import check_config
from nrp.eval.protocol import run_classification
from nrp.io.read import read_image


def test_cda_sets_are_the_generators_output_in_the_ball(grey_images, tmp_path, tiny_models):
    torch.manual_seed(0)
    weights = tmp_path / "cda_incv3_imagenet.pth"
    torch.save(CDAGenerator().state_dict(), weights)
    folder, labels = grey_images
    config = EvalConfig(images=str(folder), labels=str(labels), image_size=32, out=str(tmp_path / "run"),
                        attacks=[{"name": "cda", "weights": str(weights), "label": "CDA"}], eps=[8],
                        targets=["right"], batch_size=3)
    check_config(config)
    run = run_classification(config, DistributedContext(), tiny_models)
    (adversarial_set,) = run.sets
    assert adversarial_set.source == "cda:cda_incv3_imagenet"
    network = load_cda_generator(weights)
    stems = run.images.stems()
    for clean_path, adv_path in zip(run.clean.paths(stems), adversarial_set.paths(stems)):
        clean = read_image(clean_path)
        expected = cda(clean[None], network, eps=8 / 255)[0]
        assert (read_image(adv_path) - expected).abs().max() <= 0.5 / 255 + 1e-6


def test_a_cda_attack_without_weights_is_refused():
    config = EvalConfig(images="x", out="y", targets=["t"], attacks=["cda"])
    with pytest.raises(InputError, match=r"attacks\[0\]: attack 'cda' needs 'weights'"):
        check_config(config)
