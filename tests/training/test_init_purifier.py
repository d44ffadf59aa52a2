"""``--init-purifier``: fine-tuning starts from a weights file, which must fit the configured network."""

import pytest
import torch

from nrp.errors import CheckpointError
from nrp.purifiers import create_network, load_network, save_network, shipped_weights
from nrp.training import Trainer
from nrp.training.checkpointing import list_checkpoints, load_training_checkpoint


def test_the_purifier_starts_from_the_given_weights(tiny_config, tmp_path):
    torch.manual_seed(7)
    pretrained = create_network("nrp", width=8, blocks=1, growth=4)
    save_network(pretrained, tmp_path / "pretrained.safetensors")
    trainer = Trainer(tiny_config(init_purifier=str(tmp_path / "pretrained.safetensors"), val=[]))
    for name, value in pretrained.state_dict().items():
        assert torch.equal(trainer.purifier.state_dict()[name], value), name
    fresh = Trainer(tiny_config(out=str(tmp_path / "fresh"), val=[]))
    assert not torch.equal(fresh.purifier.conv_first.weight, pretrained.conv_first.weight)


def test_a_resumed_run_keeps_its_own_weights_not_the_initial_ones(tiny_config, tmp_path):
    start = tmp_path / "start.safetensors"
    save_network(create_network("nrp", width=8, blocks=1, growth=4), start)
    Trainer(tiny_config(init_purifier=str(start), iterations=2, val=[])).train()
    resumed = Trainer(tiny_config(init_purifier=str(start), iterations=3, resume=True, val=[]))
    first_run = load_training_checkpoint(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    assert resumed.iteration == 2
    assert torch.equal(resumed.purifier.conv_first.weight, first_run.purifier["conv_first.weight"])
    assert not torch.equal(resumed.purifier.conv_first.weight, load_network(start).conv_first.weight)


def test_weights_of_another_size_are_refused_in_one_line(tiny_config, tmp_path):
    save_network(create_network("nrp", width=16, blocks=1, growth=4), tmp_path / "wide.safetensors")
    with pytest.raises(CheckpointError, match="wide.safetensors does not fit the configured nrp: .*shape mismatches"):
        Trainer(tiny_config(init_purifier=str(tmp_path / "wide.safetensors"), val=[]))


def test_weights_of_another_architecture_are_refused(tiny_config):
    with pytest.raises(CheckpointError, match="holds a 'nrp_lite' purifier, not 'nrp'"):
        Trainer(tiny_config(init_purifier="shipped", val=[]))


def test_shipped_names_the_packaged_purifier(tiny_config):
    trainer = Trainer(tiny_config(purifier="nrp_lite", width=64, blocks=8, growth=None, init_purifier="shipped", val=[]))
    expected = load_network(shipped_weights()).state_dict()
    assert all(torch.equal(trainer.purifier.state_dict()[k], v) for k, v in expected.items())
