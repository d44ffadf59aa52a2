"""Algorithm 2: training a purifier against self-supervised perturbations, on one process or many.

Each iteration crafts x' from the clean batch x (no gradient into the purifier), updates the purifier on
Eq. 8 with the critic frozen, then updates the critic on real vs. purified (detached) images.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nrp.checkpoints import load_weights
from nrp.distributed import DistributedContext, broadcast_from_main, global_mean
from nrp.errors import InputError, NRPError, TrainingDivergedError
from nrp.features import build_classifier, build_feature_extractor
from nrp.purifiers import create_network, load_network, save_network, shipped_weights
from nrp.purifiers.registry import architecture_of
from nrp.training.allocator import retain_freed_memory
from nrp.training.checkpointing import (
    TrainingState,
    capture_rng,
    list_checkpoints,
    load_training_checkpoint,
    restore_rng,
    save_training_checkpoint,
)
from nrp.training.config import TrainConfig
from nrp.training.critic import Critic
from nrp.training.data import CropSpec, TrainingImages, derive_seed, load_validation_images, training_loader
from nrp.training.global_batchnorm import use_global_batchnorm
from nrp.training.losses import LossWeights, critic_gan_loss, purifier_objective
from nrp.training.metrics import MetricsLog
from nrp.training.perturbations import PerturbationSettings, make_perturbation
from nrp.training.precision import resolve_precision
from nrp.training.validation import validate
from nrp.units import PIXEL_SCALE

logger = logging.getLogger(__name__)

NOISE_TAG = 0x4E4F495345  # separates the perturbation noise stream from the data streams
VALIDATION_NOISE_ITERATION = -1
# Config fields a resumed run may change without warning.
RESUMABLE_CHANGES = {
    "resume", "init_purifier", "iterations", "workers", "device", "precision", "checkpoint_every", "val_every", "log_every", "keep_checkpoints",
    "updates_per_batch", "retain_heap", "channels_last", "max_cpu_seconds",
}


class Trainer:
    """Trains a purifier as configured by a :class:`TrainConfig` (see ``nrp train --help``).

    The global batch (``config.batch_size``) is split evenly over the processes of ``context``; every random
    draw derives from ``(seed, iteration, sample position)``, so a resumed or distributed run sees exactly
    the batches and perturbation noise of an uninterrupted single-process run. Under DDP the critic's
    batch-norm (``config.sync_batchnorm``) and the relativistic means are taken over the global batch, and
    rank 0 alone reads checkpoints and broadcasts them, so K processes train as one process does.
    """

    def __init__(self, config: TrainConfig, context: DistributedContext = DistributedContext()) -> None:
        config.validate()
        if config.batch_size % context.world_size:
            raise InputError(f"batch size {config.batch_size} must be divisible by the {context.world_size} processes")
        self.config, self.context, self.device = config, context, context.device
        if config.retain_heap:
            retain_freed_memory()
        self.precision = resolve_precision(config.precision, self.device)
        logger.info("precision: %s (%s)", self.precision.name, self.precision.reason)
        self.run_dir = Path(config.out)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.dataset = TrainingImages(config.data, CropSpec(resize=config.resize, crop=config.crop))
        self.validation_images = (
            load_validation_images(config.val, size=config.crop, limit=config.val_images) if config.val else None
        )
        self.feature_extractor = build_feature_extractor(
            config.backbone, config.layer, weights=config.backbone_weights
        ).to(self.device)
        classifier = (
            build_classifier(config.fgsm_model, weights=config.fgsm_weights).to(self.device)
            if config.perturbation == "fgsm" else None
        )
        di_extractor = (
            build_feature_extractor(config.backbone, config.ssp_di_layer, weights=config.backbone_weights).to(self.device)
            if config.ssp_di_layer else None
        )
        settings = _perturbation_settings(config)
        self.perturb = make_perturbation(config.perturbation, settings, self.feature_extractor, classifier, di_extractor)
        # Validation scores what the purifier does to perturbed images, so none are left clean there.
        self.validation_perturb = make_perturbation(
            config.perturbation, dataclasses.replace(settings, clean_fraction=0.0), self.feature_extractor, classifier,
            di_extractor,
        )
        self.weights = LossWeights(*config.loss_weights)

        torch.manual_seed(config.seed)
        self.purifier = create_network(config.purifier, **config.purifier_arguments()).to(self.device)
        self.critic = Critic(config.critic_width).to(self.device)
        if context.distributed and config.sync_batchnorm:
            use_global_batchnorm(self.critic)
        self.purifier_optimizer = torch.optim.Adam(self.purifier.parameters(), lr=config.lr, betas=tuple(config.betas))
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, betas=tuple(config.betas))
        self.purifier_scaler, self.critic_scaler = self.precision.scaler(), self.precision.scaler()
        dtype = self.precision.parameter_dtype
        # Channels-last (an option, results equal up to rounding) lets oneDNN's CPU convolutions skip reorders.
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        for network in (self.purifier, self.critic, self.feature_extractor, classifier, di_extractor):
            if network is not None:
                network.to(dtype=dtype, memory_format=self.memory_format)
        if self.validation_images is not None:
            self.validation_images = self.validation_images.to(dtype, memory_format=self.memory_format)
        self.cpu_seconds_before = 0.0  # CPU time of the run before this process (from the checkpoint resumed)
        self._cpu_started = time.process_time()
        self.iteration = self._restore()
        self.purifier_step_module = self._distribute(self.purifier)
        self.critic_step_module = self._distribute(self.critic)
        self.metrics = MetricsLog(self.run_dir, resume_from=self.iteration) if context.is_main else None

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads of this process; loader workers not counted) the run has spent.

        Summed over resumes through the checkpoints, so runs can be compared at equal CPU time on a shared
        machine, where wall time says little.
        """
        return self.cpu_seconds_before + time.process_time() - self._cpu_started

    # -- one iteration ---------------------------------------------------------------------------------

    def perturb_batch(self, clean: torch.Tensor, iteration: int, validation: bool = False) -> torch.Tensor:
        """Craft x' for this process's share of global batch ``iteration`` (Algorithm 1 by default)."""
        perturb = self.validation_perturb if validation else self.perturb
        with self.precision.attack_autocast():
            perturbed = perturb(clean, self._noise(iteration, clean.shape))
        return perturbed.contiguous(memory_format=self.memory_format)

    def purifier_step(self, clean: torch.Tensor, perturbed: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Update the purifier on Eq. 8 with the critic frozen; returns the purified batch and the losses."""
        self.critic.requires_grad_(False)
        with self.precision.autocast():
            purified = self.purifier_step_module(perturbed)
            clean_features = purified_features = real_logits = fake_logits = None
            if self.weights.feature:
                with torch.no_grad():
                    clean_features = self.feature_extractor(clean)
                purified_features = self.feature_extractor(purified)
            if self.weights.adversarial:
                # One critic pass over real and fake keeps batch-norm statistics the same as in the critic step.
                real_logits, fake_logits = self.critic(torch.cat((clean, purified))).chunk(2)
                real_logits = real_logits.detach()
            losses = purifier_objective(
                self.weights, clean=clean, purified=purified, clean_features=clean_features,
                purified_features=purified_features, real_logits=real_logits, fake_logits=fake_logits, gan=self.config.gan,
                batch_mean=global_mean,
            )
        self.purifier_optimizer.zero_grad(set_to_none=True)
        self.purifier_scaler.scale(losses["total"]).backward()
        self._stop_if_not_finite("purifier", losses["total"], self.purifier, self.purifier_scaler)
        self.purifier_scaler.step(self.purifier_optimizer)
        self.purifier_scaler.update()
        self.critic.requires_grad_(True)
        return purified.detach(), {f"purifier_{name}": value.item() for name, value in losses.items()}

    def critic_step(self, clean: torch.Tensor, purified: torch.Tensor) -> dict[str, float]:
        """Update the critic to tell clean images from purified ones (skipped when alpha is 0)."""
        if not self.weights.adversarial:
            return {}
        with self.precision.autocast():
            real_logits, fake_logits = self.critic_step_module(torch.cat((clean, purified))).chunk(2)
            loss = critic_gan_loss(real_logits, fake_logits, self.config.gan, batch_mean=global_mean)
        self.critic_optimizer.zero_grad(set_to_none=True)
        self.critic_scaler.scale(loss).backward()
        self._stop_if_not_finite("critic", loss, self.critic, self.critic_scaler)
        self.critic_scaler.step(self.critic_optimizer)
        self.critic_scaler.update()
        return {"critic_loss": loss.item()}

    def train_step(self, clean: torch.Tensor) -> dict[str, float]:
        """One iteration of Algorithm 2 on this process's share of the global batch.

        With ``config.updates_per_batch`` K > 1 (an extension, not in the paper) the batch crafted once is
        used for K purifier-then-critic updates: SSP is crafted on the feature extractor alone, so x' does
        not depend on the purifier and stays a valid training pair, while crafting (about half an
        iteration's cost) is paid once per K updates. The losses returned are those of the first update,
        on a batch the purifier has not been trained on yet, so they read alike for every K.
        """
        clean = clean.to(self.device, self.precision.parameter_dtype, non_blocking=True, memory_format=self.memory_format)
        perturbed = self.perturb_batch(clean, self.iteration)
        first: dict[str, float] = {}
        for _ in range(self.config.updates_per_batch):
            purified, losses = self.purifier_step(clean, perturbed)
            losses.update(self.critic_step(clean, purified))
            first = first or losses
        self.iteration += 1
        return first

    # -- the loop --------------------------------------------------------------------------------------

    def train(self, on_iteration: Callable[[int, dict[str, float]], None] | None = None) -> Path | None:
        """Run until ``config.iterations`` or the CPU budget; checkpoints, validation and logs on rank 0.

        With ``config.max_cpu_seconds`` the run stops after the first iteration at which the process has spent
        that much CPU time (:meth:`cpu_seconds`, summed over resumes), validating and checkpointing there as
        at the last iteration; a run resumed after its budget was spent trains no further.

        Returns the final purifier weights (``RUN_DIR/purifier.safetensors``) on rank 0, else ``None``.
        Each log record also gives ``data_wait_fraction``: the share of the time since the previous record
        spent waiting for the loader, and ``cpu_seconds`` (:meth:`cpu_seconds`).

        Raises:
            TrainingDivergedError: a loss or gradient became non-finite; the update was not applied and the
                checkpoints on disk are the last good ones.
        """
        loader = training_loader(
            self.dataset, self.config.batch_size, self.config.seed, start_iteration=self.iteration,
            rank=self.context.rank, world_size=self.context.world_size,
            iterations=self.config.iterations - self.iteration, num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
        )
        started, done_before = time.perf_counter(), self.iteration
        since_log, waited = started, 0.0
        batches = iter(loader)
        out_of_budget = self.cpu_budget_spent()
        while not out_of_budget:
            asked = time.perf_counter()
            clean = next(batches, None)
            waited += time.perf_counter() - asked
            if clean is None:
                break
            losses = self.train_step(clean)
            if on_iteration is not None:
                on_iteration(self.iteration, losses)
            if self.metrics is not None and self.iteration % self.config.log_every == 0:
                now = time.perf_counter()
                rate = (self.iteration - done_before) / (now - started)
                scalars = {
                    **losses, "iterations_per_second": rate, "data_wait_fraction": waited / (now - since_log),
                    "cpu_seconds": self.cpu_seconds(),
                }
                self.metrics.write(self.iteration, "train", scalars)
                since_log, waited = now, 0.0
            out_of_budget = self.cpu_budget_spent()  # decided once per iteration, so the checkpoint below is the last one
            last = self.iteration == self.config.iterations or out_of_budget
            if self.iteration % self.config.val_every == 0 or last:
                self.validate()
            if self.iteration % self.config.checkpoint_every == 0 or last:
                self.save_checkpoint()
        if out_of_budget:
            logger.info("stopped at iteration %d: the CPU budget of %g s is spent (%.1f s)", self.iteration,
                        self.config.max_cpu_seconds, self.cpu_seconds())
        return self._finish()

    def cpu_budget_spent(self) -> bool:
        """Whether ``config.max_cpu_seconds`` is set and spent; under DDP, as soon as any rank has spent it."""
        if self.config.max_cpu_seconds is None:
            return False
        spent = torch.tensor(int(self.cpu_seconds() >= self.config.max_cpu_seconds))
        if self.context.distributed:
            spent = spent.to(self.device)
            dist.all_reduce(spent, op=dist.ReduceOp.MAX)  # every rank must stop at the same iteration
        return bool(spent.item())

    def validate(self) -> dict[str, float] | None:
        """Score the purifier on the held-out images (rank 0; ``None`` without ``--val``)."""
        if self.validation_images is None or not self.context.is_main:
            return None
        clean = self.validation_images.to(self.device)
        perturbed = self.perturb_batch(clean, VALIDATION_NOISE_ITERATION, validation=True)
        grid = self.run_dir / "validation" / f"iteration_{self.iteration:08d}.png"
        scores = validate(self.purifier, self.feature_extractor, clean, perturbed, grid)
        self.metrics.write(self.iteration, "val", scores)
        logger.info("iteration %d validation: %s", self.iteration, {k: round(v, 4) for k, v in scores.items()})
        return scores

    def save_checkpoint(self) -> Path | None:
        """Write the full training state atomically (rank 0), keeping the newest ``keep_checkpoints``."""
        if not self.context.is_main:
            return None
        name, arguments = architecture_of(self.purifier)
        state = TrainingState(
            iteration=self.iteration,
            purifier=self.purifier.state_dict(),
            critic=self.critic.state_dict(),
            purifier_optimizer=self.purifier_optimizer.state_dict(),
            critic_optimizer=self.critic_optimizer.state_dict(),
            rng=capture_rng(self.device),
            config=self.config.to_dict(),
            scalers={"purifier": self.purifier_scaler.state_dict(), "critic": self.critic_scaler.state_dict()},
            cpu_seconds=self.cpu_seconds(),
        )
        path = save_training_checkpoint(
            self.checkpoint_dir, state, name, arguments, {"width": self.critic.width}, self.config.keep_checkpoints
        )
        logger.info("checkpoint %s", path)
        return path

    # -- helpers ---------------------------------------------------------------------------------------

    def _finish(self) -> Path | None:
        if not self.context.is_main:
            return None
        self.metrics.close()
        final = self.run_dir / "purifier.safetensors"
        save_network(self.purifier, final)
        return final

    def _noise(self, iteration: int, shape: torch.Size) -> torch.Tensor:
        """Standard-normal noise of this process's slice of global batch ``iteration``, on the device.

        Each sample's noise is drawn from its own generator, seeded by ``(seed, iteration, position in the
        global batch)``, so a rank draws its own slice only and gets what a single process draws there.
        """
        per_rank, start = shape[0], self.context.rank * shape[0]
        noise = torch.empty(shape, pin_memory=self.device.type == "cuda")
        for offset in range(per_rank):
            seed = derive_seed(NOISE_TAG, self.config.seed, iteration, start + offset)
            noise[offset].normal_(generator=torch.Generator().manual_seed(seed))
        return noise.to(self.device, self.precision.parameter_dtype, non_blocking=True)

    def _stop_if_not_finite(self, network: str, loss: torch.Tensor, module: nn.Module, scaler: torch.amp.GradScaler) -> None:
        """Raise before the update when the loss or (without a float16 scaler) the gradient is not finite.

        Under float16 a gradient scaler skips the steps whose scaled gradients overflow, by design, so only
        the loss is checked there. Under DDP every rank takes the same decision.
        """
        checks = [loss.detach().float().isfinite()]
        if not scaler.is_enabled():
            gradients = [p.grad for p in module.parameters() if p.grad is not None]
            checks.append(torch.nn.utils.get_total_norm(gradients).isfinite() if gradients else loss.new_ones((), dtype=torch.bool))
        finite = torch.stack(checks).to(torch.int32)
        if self.context.distributed:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        loss_ok, *gradient_ok = finite.tolist()
        if loss_ok and all(gradient_ok):
            return
        what = "loss" if not loss_ok else "gradient"
        newest = list_checkpoints(self.checkpoint_dir)
        kept = f"the last good checkpoint is {newest[-1]}" if newest else "no checkpoint was written yet"
        raise TrainingDivergedError(
            f"iteration {self.iteration + 1}: the {network} {what} is not finite; stopped before applying it, {kept} "
            "(resume from it with --resume, perhaps with a lower --lr or step size)"
        )

    def _restore(self) -> int:
        """Restore the newest checkpoint (or start fresh) on every rank; returns the iteration to continue from.

        Rank 0 alone looks at the disk and broadcasts what it read, so ranks on nodes without a shared disk
        resume from the same state; an error on rank 0 is raised on every rank.
        """
        outcome: dict | None = None
        if self.context.is_main:
            try:
                outcome = {"state": self._read_checkpoint()}
            except NRPError as error:
                if not self.context.distributed:
                    raise
                outcome = {"error": error}
        outcome = broadcast_from_main(outcome, self.context)
        if "error" in outcome:
            raise outcome["error"]
        if outcome["state"] is None:
            return 0
        state = TrainingState(**outcome["state"])
        self.purifier.load_state_dict(state.purifier)
        self.critic.load_state_dict(state.critic)
        self.purifier_optimizer.load_state_dict(state.purifier_optimizer)
        self.critic_optimizer.load_state_dict(state.critic_optimizer)
        if state.scalers:
            self.purifier_scaler.load_state_dict(state.scalers["purifier"])
            self.critic_scaler.load_state_dict(state.scalers["critic"])
        restore_rng(state.rng, self.device)
        self.cpu_seconds_before = state.cpu_seconds
        self._cpu_started = time.process_time()
        return state.iteration

    def _read_checkpoint(self) -> dict | None:
        """Rank 0: the newest checkpoint's fields, or ``None`` for a fresh start (after ``--init-purifier``)."""
        existing = list_checkpoints(self.checkpoint_dir)
        if existing and not self.config.resume:
            raise InputError(f"{self.run_dir} already holds checkpoints; pass --resume to continue, or choose another --out")
        if not existing:
            if self.config.resume:
                logger.info("no checkpoint in %s yet: starting from iteration 0", self.checkpoint_dir)
            if self.config.init_purifier:
                self._initialise_purifier(self.config.init_purifier)  # DDP's first broadcast gives it to the others
            return None
        state = load_training_checkpoint(existing[-1], map_location=self.device)
        changed = sorted(k for k, v in self.config.to_dict().items() if k not in RESUMABLE_CHANGES and state.config.get(k) != v)
        if changed:
            logger.warning("resuming with settings that differ from the checkpoint's: %s", ", ".join(changed))
        logger.info("resumed from %s (iteration %d)", existing[-1], state.iteration)
        return {field.name: getattr(state, field.name) for field in dataclasses.fields(state)}

    def _initialise_purifier(self, source: str) -> None:
        """Copy the weights of ``source`` (a file, or ``shipped``) into the purifier; they must fit it exactly."""
        path = shipped_weights() if source == "shipped" else Path(source)
        pretrained = load_network(path, architecture=self.config.purifier)
        load_weights(self.purifier, pretrained.state_dict(), source=str(path), target=f"the configured {self.config.purifier}")
        logger.info("purifier initialised from %s", path)

    def _distribute(self, module: nn.Module) -> nn.Module:
        if not self.context.distributed:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)


def _perturbation_settings(config: TrainConfig) -> PerturbationSettings:
    return PerturbationSettings(
        eps=config.eps / PIXEL_SCALE,
        ssp_steps=config.ssp_steps,
        ssp_step_size=config.ssp_step_size / PIXEL_SCALE,
        ssp_distance=config.ssp_distance,
        ssp_ti_kernel=config.ssp_ti_kernel,
        ssp_ti_fraction=config.ssp_ti_fraction,
        ssp_di_fraction=config.ssp_di_fraction if config.ssp_di_layer else 0.0,
        clean_fraction=config.clean_fraction,
        noise_std=config.noise_std / PIXEL_SCALE,
    )
