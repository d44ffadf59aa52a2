"""Two CPU processes (gloo) train exactly like one process with the same global batch, critic included."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nrp
from nrp.distributed import DistributedContext
from nrp.errors import InputError
from nrp.purifiers import load_network
from nrp.training import Trainer
from nrp.training.checkpointing import load_training_checkpoint
from nrp.training.global_batchnorm import GlobalBatchNorm2d

ITERATIONS = 8


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "nrp.cli.main", *args]
    # The processes import the nrp this test imports (an absolute path: they run in another folder).
    source = str(Path(nrp.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, (source, os.environ.get("PYTHONPATH"))))}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def flags(config) -> list[str]:
    return [
        "train", "--data", *config.data, "--out", config.out, "--purifier", config.purifier, "--width", str(config.width),
        "--blocks", str(config.blocks), "--growth", str(config.growth), "--critic-width", str(config.critic_width),
        "--iterations", str(config.iterations), "--batch-size", str(config.batch_size), "--crop", str(config.crop),
        "--resize", str(config.resize), "--ssp-steps", str(config.ssp_steps), "--layer", config.layer,
        "--backbone-weights", config.backbone_weights, "--workers", "0", "--checkpoint-every", "100",
        "--lr", str(config.lr), "--critic-lr", str(config.critic_lr), "--loss-weights", ",".join(map(str, config.loss_weights)),
        "--precision", config.precision, "--device", "cpu",
    ]


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[key].double() - b[key].double()).abs().max().item() for key in a if a[key].is_floating_point())


def test_two_gloo_processes_train_the_gan_exactly_as_one_process(tiny_config, tmp_path):
    # A learning rate ten times the paper's, so that eight iterations move the weights far beyond the tolerance.
    # float64: in float32, Adam turns rounding noise on the critic's logit biases (exactly zero gradient under the
    # relativistic loss) into full-size steps, and two float32 runs that only sum in another order drift apart.
    settings = dict(iterations=ITERATIONS, lr=1e-3, critic_lr=1e-3, precision="fp64", val=[])
    config = tiny_config(out=str(tmp_path / "ddp"), **settings)
    result = torchrun(flags(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir())
    assert checkpoints == [f"iteration_{ITERATIONS:08d}.pth"]  # rank 0 alone writes, once
    distributed = load_training_checkpoint(tmp_path / "ddp" / "checkpoints" / checkpoints[0])

    initial = Trainer(tiny_config(out=str(tmp_path / "initial"), **settings))
    single = Trainer(tiny_config(out=str(tmp_path / "single"), **settings))
    single.train()
    moved = largest_difference(initial.purifier.state_dict(), single.purifier.state_dict())
    critic_moved = largest_difference(initial.critic.state_dict(), single.critic.state_dict())
    assert moved > 5e-3 and critic_moved > 5e-3  # hundreds of times the tolerance below
    assert largest_difference(single.purifier.state_dict(), distributed.purifier) < 1e-5
    # The critic too: batch-norm statistics and relativistic means over the global batch, as in one process.
    assert largest_difference(single.critic.state_dict(), distributed.critic) < 1e-5
    final = load_network(tmp_path / "ddp" / "purifier.safetensors")
    assert largest_difference(single.purifier.state_dict(), final.state_dict()) < 1e-5


def _resume_without_a_shared_disk(config_for_rank, context: DistributedContext):
    """Each rank's run folder is its own, as on nodes without a shared disk; only rank 0's holds the checkpoint."""
    try:
        trainer = Trainer(config_for_rank(context.rank), context)
    except InputError as error:
        return str(error)
    assert all(isinstance(m, GlobalBatchNorm2d) for m in trainer.critic.modules() if isinstance(m, torch.nn.BatchNorm2d))
    return trainer.iteration, trainer.purifier.state_dict(), trainer.critic.state_dict(), trainer.purifier_optimizer.state_dict()


def test_rank_0_reads_the_checkpoint_and_every_rank_resumes_from_it(tiny_config, tmp_path, two_ranks):
    first = Trainer(tiny_config(out=str(tmp_path / "rank0"), iterations=2, val=[]))
    first.train()

    def config_for_rank(rank: int):
        return tiny_config(out=str(tmp_path / f"rank{rank}"), iterations=4, resume=True, val=[])

    for iteration, purifier, critic, optimizer in two_ranks(lambda context: _resume_without_a_shared_disk(config_for_rank, context)):
        assert iteration == 2
        assert largest_difference(purifier, first.purifier.state_dict()) == 0
        assert largest_difference(critic, first.critic.state_dict()) == 0
        expected = first.purifier_optimizer.state_dict()["state"]
        assert all(torch.equal(optimizer["state"][k]["exp_avg"], expected[k]["exp_avg"]) for k in expected)


def test_an_error_on_rank_0_stops_every_rank(tiny_config, tmp_path, two_ranks):
    Trainer(tiny_config(out=str(tmp_path / "rank0"), iterations=2, val=[])).train()

    def config_for_rank(rank: int):  # no --resume: rank 0 refuses its folder of checkpoints
        return tiny_config(out=str(tmp_path / f"rank{rank}"), iterations=4, val=[])

    messages = two_ranks(lambda context: _resume_without_a_shared_disk(config_for_rank, context))
    assert all(isinstance(m, str) and "already holds checkpoints; pass --resume" in m for m in messages)


@pytest.mark.parametrize("rank, world_size", [(0, 2), (1, 2)])
def test_each_rank_draws_the_noise_of_its_own_slice(tiny_config, rank, world_size):
    trainer = Trainer(tiny_config(batch_size=4, val=[]))
    whole = trainer._noise(3, torch.Size((4, 3, 8, 8)))
    trainer.context = DistributedContext(rank=rank, world_size=world_size)  # as the rank sees itself
    assert torch.equal(trainer._noise(3, torch.Size((2, 3, 8, 8))), whole[2 * rank : 2 * rank + 2])
