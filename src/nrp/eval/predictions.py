"""Running every (defense, target) pair on a stored image set once, and keeping the top-5 predictions.

Each set is read batch by batch; each defense transforms a batch once and every target classifies the
defended batch, so no image is decoded or defended twice. Predictions are stored per (set, defense, target)
as ``RUN/predictions/<set>/<defense>/<target>.pt`` (written atomically) with the fingerprint of their record
(:func:`~nrp.eval.records.prediction_record`), so a re-run evaluates only what is missing or was made under
another configuration. A randomised defense (R&P, the dynamic NRP) draws from a generator seeded by (run seed, set,
defense, batch number), which makes results independent of how batches are spread over processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrp.atomic import atomic_path
from nrp.eval.artefacts import folder_name, stamped
from nrp.eval.datasets import batch_ranges, read_batch
from nrp.eval.sets import ImageSet, batch_generator
from nrp.fingerprint import fingerprint

TOP_K = 5


def prediction_path(run_dir: Path, adversarial_set: ImageSet, defense: str, target: str) -> Path:
    """Where the predictions of ``target`` behind ``defense`` on ``adversarial_set`` are stored."""
    return run_dir / "predictions" / adversarial_set.relative / folder_name(defense) / f"{folder_name(target)}.pt"


def missing_pairs(run_dir: Path, adversarial_set: ImageSet, records: Mapping[tuple[str, str], dict[str, Any]],
                  policy: str = "recompute") -> dict[str, list[str]]:
    """``{defense: [targets]}`` whose predictions on the set are not stored under their record yet.

    ``records`` maps each wanted ``(defense, target)`` to its record; a file stored under another record is
    logged as stale (or refused, ``policy="refuse"``).
    """
    missing: dict[str, list[str]] = {}
    for (defense, target), record in records.items():
        path = prediction_path(run_dir, adversarial_set, defense, target)
        what = f"predictions of {target} behind {defense} on {adversarial_set.key}"
        if not stamped(_read_payload(path), record, what, policy):
            missing.setdefault(defense, []).append(target)
    return missing


def predict_set(
    adversarial_set: ImageSet,
    stems: list[str],
    pairs: dict[str, list[str]],
    defenses: dict[str, nn.Module],
    classifiers: Callable[[str], nn.Module],
    batch_size: int,
    seed: int,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> dict[tuple[str, str], dict[int, torch.Tensor]]:
    """Top-5 predictions of each requested (defense, target) pair on this process's batches of the set.

    Returns ``{(defense, target): {image position: (5,) classes}}``.
    """
    paths = adversarial_set.paths(stems)
    results: dict[tuple[str, str], dict[int, torch.Tensor]] = {(d, t): {} for d, targets in pairs.items() for t in targets}
    with torch.no_grad():
        for number, positions in batch_ranges(len(paths), batch_size, rank, world):
            x = read_batch([paths[p] for p in positions]).to(device)
            for defense, targets in pairs.items():
                defended = defend(defenses[defense], x, defense_generator(adversarial_set, defense, seed, number))
                for target in targets:
                    top5 = classifiers(target)(defended).topk(TOP_K, dim=1).indices.cpu()
                    results[(defense, target)].update(zip(positions, top5))
            if on_batch is not None:
                on_batch(len(positions))
    return results


def defense_generator(adversarial_set: ImageSet, label: str, seed: int, number: int) -> torch.Generator:
    """The generator a randomised defense ``label`` draws from on batch ``number`` of the set: the one seeding
    rule that scoring and the report's grid share."""
    return batch_generator(seed, f"{adversarial_set.key}/{label}", number)


def defended_as_scored(adversarial_set: ImageSet, stems: list[str], indices: list[int], label: str, defense: nn.Module,
                       batch_size: int, seed: int, device: torch.device) -> torch.Tensor:
    """The images at ``indices`` of the set behind ``defense`` exactly as :func:`predict_set` scored them: each
    image's whole batch is defended with that batch's generator (a randomised defense may draw once per batch),
    so a picture of a randomised defense shows the very draw the tables counted. ``(len(indices), 3, H, W)``."""
    paths, rows = adversarial_set.paths(stems), {}
    wanted = {index // batch_size for index in indices}
    with torch.no_grad():
        for number, positions in batch_ranges(len(paths), batch_size):
            if number in wanted:
                x = read_batch([paths[p] for p in positions]).to(device)
                defended = defend(defense, x, defense_generator(adversarial_set, label, seed, number))
                rows.update(zip(positions, defended))
    return torch.stack([rows[index] for index in indices])


def defend(defense: nn.Module, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``defense(x)`` clamped to [0, 1], a randomised defense drawing from the global RNG seeded from ``generator``
    inside ``torch.random.fork_rng`` (so the caller's RNG is left as it was); ``x`` is ``(B, 3, H, W)`` in [0, 1]."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        return defense(x).clamp(0, 1)


def save_predictions(path: Path, top5: torch.Tensor, record: dict[str, Any]) -> None:
    """Store ``(N, 5)`` predictions atomically, with the record that made them and its fingerprint."""
    payload = {"top5": top5.clone(), "fingerprint": fingerprint(record), "record": json.dumps(record, default=str)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_predictions(path: Path) -> torch.Tensor:
    """The stored ``(N, 5)`` predictions."""
    return torch.load(path, map_location="cpu", weights_only=True)["top5"]


def _read_payload(path: Path) -> dict[str, Any] | None:
    """The stored file as ``{fingerprint, record}`` (``{}`` for a file of an older layout), ``None`` when absent."""
    if not path.is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "fingerprint" not in payload:
        return {}
    return {"fingerprint": payload["fingerprint"], "record": json.loads(payload["record"])}
