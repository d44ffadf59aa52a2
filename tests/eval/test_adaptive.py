"""Adaptive attack entries on constructed cases: worst-of-N, fixed randomness, BPDA and EOT, Table 3's substitute,
and a known answer of ``nrp eval`` end to end."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nrp.errors import InputError
from nrp.eval.adaptive import Adaptive, AdaptiveAttack, FixedRandomness, craft, defended_accuracy, evaluate_adaptive
from nrp.eval.datasets import StoredImages
from nrp.io.write import write_image

from .conftest import BoundaryClassifier, ConstantClassifier

EPS = 16 / 255


class Alternating(nn.Module):
    """Identity on odd calls; on even calls it adds 16/255, which moves a boundary image to the next class."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x if self.calls % 2 else (x + 16 / 255).clamp(0, 1)


class Noisy(nn.Module):
    """A dynamic defense: small Gaussian noise from its own generator (as the dynamic purifier draws)."""

    def __init__(self, std: float = 0.01) -> None:
        super().__init__()
        self.std, self.generator = std, None

    def forward(self, x):
        return (x + self.std * torch.randn(x.shape, generator=self.generator)).clamp(0, 1)


@pytest.fixture
def boundary_batch():
    levels = torch.tensor([85, 170, 85, 170]) / 255  # classes 0 and 2 of the boundary classifier
    return levels.view(-1, 1, 1, 1).expand(4, 3, 8, 8).clone(), torch.tensor([0, 2, 0, 2])


def test_worst_of_n_counts_an_image_broken_when_any_draw_misclassifies_it(boundary_batch):
    x, y = boundary_batch
    single, worst = defended_accuracy(Alternating(), BoundaryClassifier(), x, y, draws=3)
    assert single == 1.0 and worst == 0.0
    assert defended_accuracy(Alternating(), BoundaryClassifier(), x, y, draws=1) == (1.0, 1.0)


def test_fixed_randomness_reuses_one_draw():
    x = torch.rand(2, 3, 8, 8)
    noisy = Noisy(0.1)
    assert not torch.equal(noisy(x), noisy(x))
    fixed = FixedRandomness(noisy, seed=3)
    assert torch.equal(fixed(x), fixed(x))
    assert not torch.equal(fixed(x), FixedRandomness(noisy, seed=4)(x))


def adaptive(name: str, params: dict | None = None, **settings) -> AdaptiveAttack:
    return AdaptiveAttack(name, params or {}, Adaptive(**settings))


@pytest.mark.parametrize("gradient", ["full", "identity"])
def test_pgd_with_eot_through_a_dynamic_defense_breaks_the_boundary_classifier(boundary_batch, gradient):
    x, y = boundary_batch
    attack = adaptive("pgd", {"steps": 10, "step_size": 2 / 255}, gradient=gradient, eot=4, draws=5)
    row = evaluate_adaptive(attack, Noisy(), BoundaryClassifier(), x, y, EPS)
    assert row["clean"] == 1.0
    assert row["single_draw"] == 0.0 and row["worst_of_n"] == 0.0 and row["draws"] == 5


def test_a_source_is_what_the_attack_is_crafted_on(boundary_batch):
    # Crafted on a classifier without gradient, PGD moves nothing across the boundary; on the target it does.
    x, y = boundary_batch
    attack = adaptive("pgd", {"steps": 10, "step_size": 2 / 255}, draws=2)
    on_source = evaluate_adaptive(attack, nn.Identity(), BoundaryClassifier(), x, y, EPS, source=ConstantClassifier())
    on_target = evaluate_adaptive(attack, nn.Identity(), BoundaryClassifier(), x, y, EPS)
    assert (on_source["single_draw"], on_target["single_draw"]) == (1.0, 0.0)


def test_batches_are_weighed_by_their_images():
    # Three images out of reach at eps 8, one within it, in batches of 3 and 1: 3 of 4 stay correct.
    x = (torch.tensor([80, 80, 80, 89]) / 255).view(-1, 1, 1, 1).expand(4, 3, 8, 8).clone()
    attack = adaptive("pgd", {"steps": 10, "step_size": 2 / 255}, draws=1)
    for batch_size in (None, 3, 1):
        row = evaluate_adaptive(attack, nn.Identity(), BoundaryClassifier(), x, torch.zeros(4, dtype=torch.long), 8 / 255,
                                batch_size=batch_size)
        assert (row["clean"], row["single_draw"], row["images"]) == (1.0, 0.75, 4)


def test_stored_images_are_read_a_batch_at_a_time_and_score_as_the_tensor(tmp_path):
    # The same four images as above, as PNG files, and a fifth file that is not an image: with max_images 4 it
    # is never read, so the run attacks batch by batch from disk and scores exactly as the tensor does.
    x = (torch.tensor([80, 80, 80, 89]) / 255).view(-1, 1, 1, 1).expand(4, 3, 8, 8).clone()
    paths = []
    for index, image in enumerate(x):
        write_image(image, tmp_path / f"{index}.png")
        paths.append(tmp_path / f"{index}.png")
    (tmp_path / "4.png").write_bytes(b"not a png")
    stored = StoredImages([*paths, tmp_path / "4.png"])
    assert len(stored) == 5 and torch.equal(stored[1:3], x[1:3])
    attack = adaptive("pgd", {"steps": 10, "step_size": 2 / 255}, draws=1, max_images=4)
    y = torch.zeros(5, dtype=torch.long)
    for batch_size in (3, 1):
        from_disk = evaluate_adaptive(attack, nn.Identity(), BoundaryClassifier(), stored, y, 8 / 255, batch_size=batch_size)
        in_memory = evaluate_adaptive(attack, nn.Identity(), BoundaryClassifier(), x, y[:4], 8 / 255, batch_size=batch_size)
        assert from_disk == in_memory and (from_disk["single_draw"], from_disk["images"]) == (0.75, 4)
    with pytest.raises(TypeError, match="slices"):
        stored[0]


def test_table3_with_an_identity_substitute_is_bpda_with_the_identity(boundary_batch):
    x, y = boundary_batch
    source = BoundaryClassifier()
    generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with_substitute = craft(adaptive("dim_ti_fgsm", gradient="substitute", substitute="none"), nn.Identity(), source,
                            x, y, EPS, generator(), nn.Identity())
    bpda = craft(adaptive("dim_ti_fgsm", gradient="identity"), nn.Identity(), source, x, y, EPS, generator())
    assert torch.equal(with_substitute, bpda)
    assert (with_substitute - x).abs().max() <= EPS + 1e-6


@pytest.mark.parametrize(
    "value, message",
    [({"gradient": "straight"}, "gradient must be one of full, identity, substitute"),
     ({"gradient": "substitute"}, "go together"), ({"substitute": "none"}, "go together"),
     ({"eot": 0}, "eot must be >= 1"), ({"draws": 0}, "draws must be >= 1"),
     ({"restarts": 2}, "unknown keys restarts"), ("full", "must be a mapping")],
)
def test_bad_adaptive_settings_are_refused(value, message):
    with pytest.raises(InputError, match=message):
        Adaptive.parse(value)


def test_autoattack_entries_pass_their_own_parameters_to_the_adapter(boundary_batch, monkeypatch):
    import nrp.attacks.registry as registry

    x, y = boundary_batch
    seen = []
    monkeypatch.setitem(registry.ATTACKS, "autoattack", lambda model, x, y, **kw: seen.append((model, kw)) or x)
    craft(adaptive("autoattack", {"version": "rand", "eot_draws": 3, "steps": 4}), nn.Identity(), BoundaryClassifier(),
          x, y, EPS, torch.Generator())
    (model, kw), = seen
    assert (kw["version"], kw["eot_draws"], kw["steps"], kw["eps"]) == ("rand", 3, 4, EPS)
    assert model.gradient == "full" and model.eot_samples == 1  # rand's own EOT, not DefendedModel's


# Flat 24x24 greys below the midpoints 93/255 (class 0 -> 1) and 178/255 (class 2 -> 3) of the boundary
# classifier by 13, 10, 7 and 4 levels: within eps 8 only some can cross.
KNOWN_LEVELS = ((80, 0), (83, 0), (86, 0), (89, 0), (165, 2), (168, 2), (171, 2), (174, 2))
KNOWN_ATTACKS = [
    {"name": "pgd", "steps": 10, "step_size": 1 / 255, "label": "pgd", "adaptive": {"draws": 3}},
    {"name": "pgd", "steps": 10, "step_size": 1 / 255, "label": "bpda", "adaptive": {"gradient": "identity", "draws": 3}},
    {"name": "pgd", "steps": 6, "step_size": 2 / 255, "label": "fixed", "adaptive": {"eot": 2, "fixed": True, "draws": 3}},
    {"name": "dim_ti_fgsm", "steps": 10, "step_size": 8 / 255 / 10, "label": "table3",
     "adaptive": {"gradient": "identity", "source": "edge", "draws": 3}},
]
# What the former `adaptive:` block of nrp eval gave on these images (measured before it became these entries):
# {kind: pgd, steps: 10, step_size: 1/255}, the same with gradient identity, {kind: pgd, eot: 2, steps: 6,
# step_size: 2/255, fixed: true}, {kind: table3, steps: 10} with source edge, at eps 8, draws 3.
KNOWN_SINGLE_DRAW = {
    "none": {"pgd": 0.75, "bpda": 0.75, "fixed": 0.5, "table3": 0.625},
    # Quantisation has a zero gradient: the full gradient cannot move any image; BPDA can. Table 3 behind it is
    # 0.75 in batches of 3 (the former block ran in one batch: 0.625, as with batches of 4 or 8 now), because DIM
    # draws one transformation per step for the whole batch, so the batch size changes the draws.
    "bit_depth(bits=5)": {"pgd": 1.0, "bpda": 0.625, "fixed": 1.0, "table3": 0.75},
}


@pytest.fixture
def known_images(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "known"
    folder.mkdir()
    rows = ["filename,label"]
    for index, (level, label) in enumerate(KNOWN_LEVELS):
        Image.fromarray(np.full((24, 24, 3), level, dtype=np.uint8)).save(folder / f"img{index}.png")
        rows.append(f"img{index}.png,{label}")
    (tmp_path / "known.csv").write_text("\n".join(rows) + "\n")
    return folder, tmp_path / "known.csv"


def test_nrp_eval_crafts_adaptive_entries_through_each_defense_with_the_former_blocks_numbers(known_images, tmp_path):
    import json

    from nrp.eval.config import EvalConfig
    from nrp.eval.experiment_file import check_config
    from nrp.eval.run import run_evaluation

    folder, labels = known_images
    config = EvalConfig(images=str(folder), labels=str(labels), image_size=24, out=str(tmp_path / "run"),
                        targets=["edge"], batch_size=3, eps=[8.0], attacks=KNOWN_ATTACKS,
                        defenses=["none", {"name": "bit_depth", "bits": 5}])
    check_config(config)  # no sources: every attack is crafted through the defense
    files = run_evaluation(config, {"edge": BoundaryClassifier()})
    rows = json.loads(files["adaptive_json"].read_text())
    found = {(r["defense"], r["attack"]): r for r in rows}
    assert {d: {a: found[d, a]["single_draw"] for a in attacks} for d, attacks in KNOWN_SINGLE_DRAW.items()} == \
        KNOWN_SINGLE_DRAW
    assert all(r["worst_of_n"] == r["single_draw"] and r["clean"] == 1.0 and r["draws"] == 3 for r in rows)
    assert not (tmp_path / "run" / "sets" / "edge").exists()  # nothing crafted per source
    table = files["adaptive_md"].read_text()
    assert "| bpda | 8 | bit_depth(bits=5) | edge | edge | identity | 1 | 100.0% | 62.5% | 62.5% | 3 |" in table
