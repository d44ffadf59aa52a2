"""``ssp(..., reference=True)`` against a line-by-line transcription of the authors' ``ssp.py`` loop."""

import pytest
import torch
from torch import nn

from nrp.attacks import ssp
from nrp.attacks.ssp import reference_preprocess
from nrp.errors import InputError

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Normalised(nn.Module):
    """The project's convention: normalisation inside the feature extractor."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def authors_script(img, net, eps, seed):
    """The script's loop as published: in-place normalize, leaf ``adv`` from raw randn, 100 fixed steps."""

    def normalize(t):
        for channel in range(3):
            t[:, channel, :, :] = (t[:, channel, :, :] - MEAN[channel]) / STD[channel]
        return t

    criterion = nn.MSELoss()
    torch.manual_seed(seed)
    adv = torch.randn(img.shape)
    adv.requires_grad = True
    for _ in range(100):
        adv1 = adv + 0
        loss = criterion(net(normalize(adv1)), net(normalize(img.clone().detach())))
        loss.backward()
        adv.data = adv.data + 0.01 * adv.grad.sign()
        adv.data = torch.where(adv.data > img.data + eps, img.data + eps, adv.data)
        adv.data = torch.where(adv.data < img.data - eps, img.data - eps, adv.data)
        adv.data.clamp_(0.0, 1.0)
        adv.grad.data.zero_()
    return adv.detach()


@pytest.fixture
def net(features):
    return features.requires_grad_(True)  # the script's VGG keeps trainable parameters


@pytest.mark.parametrize("batch", [1, 3])
def test_reference_mode_equals_the_authors_script_bit_for_bit(net, make_images, batch):
    x = make_images(3, shape=(batch, 3, 16, 16))
    theirs = authors_script(x, net, 16 / 255, seed=11)
    torch.manual_seed(11)
    ours = ssp(x, Normalised(net), reference=True)  # generator=None: the global generator, as the script
    assert torch.equal(ours, theirs)
    assert (theirs - x).abs().max() <= 16 / 255 + 1e-7


@pytest.mark.parametrize(
    "kwargs",
    [{"steps": 10}, {"step_size": 0.02}, {"distance": "mae"}, {"start": "uniform"}, {"ti_kernel": 3},
     {"diversity_prob": 0.5}, {"init": torch.zeros(1, 3, 16, 16)}],
)
def test_reference_mode_refuses_settings_the_script_fixes(features, make_images, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(InputError, match=f"reference mode fixes .* cannot take {name}"):
        ssp(make_images(0, shape=(1, 3, 16, 16)), features, reference=True, **kwargs)


def test_reference_preprocess_resizes_the_short_side_and_crops_the_centre():
    x = torch.zeros(1, 3, 300, 400)
    x[..., 150, 200] = 1.0  # the centre pixel stays near the centre of the crop
    out = reference_preprocess(x)
    assert out.shape == (1, 3, 224, 224)
    row, col = divmod(int(out[0, 0].argmax()), 224)
    assert abs(row - 112) <= 1 and abs(col - 112) <= 1
    flat = torch.full((2, 3, 256, 320), 0.25)
    assert torch.allclose(reference_preprocess(flat), torch.full((2, 3, 224, 224), 0.25))
