"""The training configs shipped in configs/ load into valid TrainConfigs with the documented settings."""

from pathlib import Path

from nrp.training.config import build_config, load_config_file

CONFIGS = Path(__file__).parents[2] / "configs"


def test_resg_config_is_the_papers_setting_on_nrp_resg():
    config = build_config(load_config_file(CONFIGS / "nrp_resg.yaml"), {"data": ["d"], "out": "o"})
    assert (config.purifier, config.backbone, config.layer) == ("nrp_resg", "vgg16", "conv3_3")
    assert config.loss_weights == [5e-3, 1e-2, 1.0] and config.lr == 1e-4


def test_offline_config_is_the_shipped_purifiers_command():
    config = build_config(load_config_file(CONFIGS / "nrp_lite_offline.yaml"), {"data": ["d"], "out": "o"})
    assert (config.purifier, config.width, config.blocks) == ("nrp_lite", 64, 8)
    assert (config.backbone, config.layer, config.critic_width) == ("efficientnet-lite0", "_blocks.4", 32)
    assert config.loss_weights == [5e-3, 100.0, 1.0] and config.lr == 3e-4
