"""Training purifiers self-supervised (Algorithm 2): critic, losses, perturbation sources, data, trainer."""

from nrp.training.config import TrainConfig, build_config, load_config_file
from nrp.training.critic import Critic
from nrp.training.losses import LossWeights, critic_gan_loss, feature_loss, pixel_loss, purifier_gan_loss
from nrp.training.trainer import Trainer

__all__ = [
    "Critic",
    "LossWeights",
    "TrainConfig",
    "Trainer",
    "build_config",
    "critic_gan_loss",
    "feature_loss",
    "load_config_file",
    "pixel_loss",
    "purifier_gan_loss",
]
