"""``nrp train``: train a purifier self-supervised (Algorithm 2), alone or under ``torchrun``."""

from __future__ import annotations

import argparse
import inspect
import logging

from tqdm import tqdm

from nrp.attacks import DISTANCES
from nrp.cli import exit_codes
from nrp.cli.messages import TRAIN_HINT
from nrp.purifiers import PURIFIERS
from nrp.cli.train_checks import check_resume, check_run_folder, checked_train_config
from nrp.run_lock import is_rank_zero, run_folder_lock
from nrp.training.config import TrainConfig, config_fields, load_config_file
from nrp.distributed import setup, teardown
from nrp.training.losses import GAN_KINDS
from nrp.training.perturbations import PERTURBATIONS
from nrp.training.precision import PRECISIONS
from nrp.training.trainer import Trainer

logger = logging.getLogger("nrp")
DEFAULTS = TrainConfig()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``nrp train``; every flag is a :class:`TrainConfig` field (flags beat ``--config``)."""
    parser = subparsers.add_parser(
        "train",
        help="train a purifier (Algorithm 2)",
        description="Train a Neural Representation Purifier on unlabelled images against self-supervised "
        "perturbations. Launch with torchrun --nproc_per_node=K to train on K processes (the batch size is the "
        "global batch). Pixel quantities (--eps, --ssp-step-size, --noise-std) are in 0-255 units.",
    )
    add = parser.add_argument
    add("--config", help="YAML or JSON file setting any of the fields below (flags win)")
    add("--data", nargs="+", help="folders of training images (searched recursively)")
    add("--out", help="run folder: checkpoints, logs, validation grids, purifier.safetensors")
    add("--val", nargs="+", help="held-out folders for validation")
    add("--val-images", type=int, help=f"validation images used (default {DEFAULTS.val_images})")
    add("--purifier", choices=sorted(PURIFIERS), help=f"architecture (default {DEFAULTS.purifier})")
    add("--width", type=int, help=f"purifier feature channels (default: the architecture's: {_architecture_defaults('width')})")
    add("--blocks", type=int, help=f"purifier blocks (default: the architecture's: {_architecture_defaults('blocks')})")
    add("--growth", type=int, help="NRP dense growth channels (default 32)")
    add("--init-purifier", help="start the purifier from this weights file instead of from scratch, to fine-tune it "
        "(same architecture and size; 'shipped' names the purifier shipped with nrp); ignored when resuming")
    add("--critic-width", type=int, help=f"critic base channels (default {DEFAULTS.critic_width})")
    add("--iterations", type=int, help=f"total iterations (default {DEFAULTS.iterations})")
    add("--max-cpu-seconds", type=float, help="stop, with a checkpoint, once the training process has spent this much CPU "
        "time (user + system, summed over resumes), to compare runs at equal CPU time on a shared machine; --resume with a "
        "larger budget continues (default: no budget)")
    add("--batch-size", type=int, help=f"global batch size (default {DEFAULTS.batch_size})")
    add("--updates-per-batch", type=int, help="extension: purifier and critic updates per crafted SSP batch; SSP does not depend "
        f"on the purifier, so one crafted batch serves several updates (default {DEFAULTS.updates_per_batch}, as Algorithm 2)")
    add("--crop", type=int, help=f"random crop side (default {DEFAULTS.crop})")
    add("--resize", type=int, help=f"short side images are resized to before cropping (default {DEFAULTS.resize})")
    add("--perturbation", choices=PERTURBATIONS, help="ssp (default), gaussian (GNP ablation) or fgsm (FGSP ablation)")
    add("--eps", type=float, help=f"perturbation budget, 0-255 units (default {DEFAULTS.eps:g})")
    add("--ssp-steps", type=int, help=f"SSP iterations per batch (default {DEFAULTS.ssp_steps})")
    add("--ssp-step-size", type=float, help=f"SSP step, 0-255 units (default {DEFAULTS.ssp_step_size})")
    add("--ssp-distance", choices=sorted(DISTANCES), help=f"SSP feature distance (default {DEFAULTS.ssp_distance})")
    add("--ssp-ti-kernel", type=int, help="extension: give a share of the images SSP with TI-smoothed gradients, kernel side (odd; default off)")
    add("--ssp-ti-fraction", type=float, help=f"share of images given the smoothed SSP (default {DEFAULTS.ssp_ti_fraction})")
    add("--ssp-di-layer", help="extension: give a share of the images SSP through DIM's input diversity on this layer of --backbone (e.g. its logits); default off")
    add("--ssp-di-fraction", type=float, help=f"share of images given the input-diversity SSP (default {DEFAULTS.ssp_di_fraction})")
    add("--clean-fraction", type=float, help="extension: share of images passed through unperturbed, so the purifier learns to keep clean images (default 0)")
    add("--noise-std", type=float, help=f"gaussian perturbation std, 0-255 units (default {DEFAULTS.noise_std:g})")
    add("--fgsm-model", help="classifier the fgsm perturbation attacks (torchvision name or timm/<name>)")
    add("--fgsm-weights", help="weights file of --fgsm-model")
    add("--loss-weights", type=_weights, help="adversarial,pixel,feature (default 5e-3,1e-2,1)")
    add("--gan", choices=GAN_KINDS, help="relativistic (default, Eq. 7) or vanilla (ablation)")
    add("--lr", type=float, help=f"purifier learning rate (default {DEFAULTS.lr:g})")
    add("--critic-lr", type=float, help=f"critic learning rate (default {DEFAULTS.critic_lr:g})")
    add("--betas", type=_weights, help="Adam betas, e.g. 0.9,0.999 (default)")
    add("--backbone", help=f"feature extractor backbone (default {DEFAULTS.backbone})")
    add("--layer", help=f"feature extractor layer (default {DEFAULTS.layer})")
    add("--backbone-weights", help="weights file of the backbone, when it is not in the torchvision/timm cache")
    add("--seed", type=int, help=f"seed of every random draw (default {DEFAULTS.seed})")
    add("--workers", type=int, help="data loading processes per rank (default: the CPUs this process may use, shared among "
        "the node's ranks, at most 8)")
    add("--device", help="cpu, cuda or auto (default); under torchrun each rank takes GPU LOCAL_RANK")
    add("--precision", choices=PRECISIONS, help="auto (default: bf16 on GPUs of compute capability >= 8.0, fp16 with a gradient "
        "scaler on older GPUs, fp32 on CPUs), bf16, fp16, fp32, or fp64 (slow; for checking runs against each other); losses are "
        "always float32 or wider")
    add("--sync-batchnorm", action=argparse.BooleanOptionalAction, default=None, help="under torchrun, normalise the critic's "
        "batch-norm over the global batch, as one process does (default on)")
    add("--retain-heap", action=argparse.BooleanOptionalAction, default=None, help="keep freed memory in the process "
        "(glibc malloc: no mmap per large block, no heap trimming) instead of faulting it in again each iteration; speed "
        "only, the results are the same (default on)")
    add("--channels-last", action=argparse.BooleanOptionalAction, default=None, help="store networks and batches "
        "channels-last (NHWC): faster CPU convolutions, above all with --precision bf16; results equal up to rounding "
        "(default off)")
    add("--checkpoint-every", type=int, help=f"iterations between checkpoints (default {DEFAULTS.checkpoint_every})")
    add("--keep-checkpoints", type=int, help=f"checkpoints kept (default {DEFAULTS.keep_checkpoints})")
    add("--val-every", type=int, help=f"iterations between validations (default {DEFAULTS.val_every})")
    add("--log-every", type=int, help=f"iterations between log records (default {DEFAULTS.log_every})")
    add("--resume", action="store_true", default=None, help="continue from the newest checkpoint in --out")
    add("--resume-intact", action="store_true", help="with --resume: when the newest checkpoint is damaged, move it "
        "aside (*.damaged) and continue from the newest intact one")
    parser.set_defaults(run=run, weights_hint=TRAIN_HINT)


def _architecture_defaults(argument: str) -> str:
    """Each purifier's default for a constructor ``argument``, read off the registry: ``"64 for nrp, ...; 48 for nrp_ms"``."""
    by_value: dict[object, list[str]] = {}
    for name, network in sorted(PURIFIERS.items()):
        parameter = inspect.signature(network).parameters.get(argument)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            by_value.setdefault(parameter.default, []).append(name)
    return "; ".join(f"{value} for {', '.join(names)}" for value, names in by_value.items())


def run(args: argparse.Namespace) -> int:
    """Build the configuration, train, and report where the purifier went; returns the exit code."""
    file_values = load_config_file(args.config) if args.config else {}
    flags = {name: getattr(args, name) for name in config_fields() if hasattr(args, name)}
    config = checked_train_config(file_values, flags, args.config)
    if not is_rank_zero():
        return _train(config)
    check_run_folder(config)
    with run_folder_lock(config.out):  # one writer per run folder; torchrun's rendezvous waits for rank 0 here
        if config.resume:
            check_resume(config, flags, take_intact=args.resume_intact)
        return _train(config)


def _train(config: TrainConfig) -> int:
    context = setup(config.device)
    if not context.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # one voice: rank 0 reports progress
    try:
        trainer = Trainer(config, context)
        total = config.iterations
        with tqdm(total=total, initial=trainer.iteration, desc="train", unit="it", disable=None if context.is_main else True) as bar:
            def on_iteration(iteration: int, losses: dict[str, float]) -> None:
                bar.update(1)
                bar.set_postfix({name.removeprefix("purifier_"): f"{value:.4g}" for name, value in losses.items()}, refresh=False)

            final = trainer.train(on_iteration)
        if final is not None:
            logger.info("purifier written to %s", final)
    finally:
        teardown(context)
    return exit_codes.OK


def _weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None
