"""Channels-last training (``channels_last``): the same iteration as the default layout, up to float rounding."""

import torch

from nrp.purifiers import load_network
from nrp.training import Trainer


def test_a_channels_last_iteration_matches_the_default_layout(tiny_config, tmp_path):
    clean = torch.rand(4, 3, 32, 32)
    default = Trainer(tiny_config(val=[], out=str(tmp_path / "default")))
    nhwc = Trainer(tiny_config(val=[], out=str(tmp_path / "nhwc"), channels_last=True))
    conv = next(p for p in nhwc.purifier.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    perturbed = nhwc.perturb_batch(clean, 0)
    assert perturbed.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(perturbed, default.perturb_batch(clean, 0), atol=1e-6, rtol=0)
    expected, got = default.train_step(clean), nhwc.train_step(clean)
    for name in expected:
        assert abs(got[name] - expected[name]) <= 1e-4 * max(1.0, abs(expected[name])), name
    for a, b in zip(default.purifier.state_dict().values(), nhwc.purifier.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_a_channels_last_run_writes_checkpoints_that_load_and_resume(tiny_config, tmp_path):
    config = tiny_config(iterations=2, checkpoint_every=2, channels_last=True)
    final = Trainer(config).train()
    purifier = load_network(final)
    assert purifier(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    resumed = Trainer(tiny_config(iterations=4, checkpoint_every=2, channels_last=True, resume=True))
    assert resumed.iteration == 2
    resumed.train()
