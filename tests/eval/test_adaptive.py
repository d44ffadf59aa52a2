"""The adaptive protocol on constructed cases: worst-of-N, fixed randomness, BPDA and EOT, Table 3's substitute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nrp.errors import InputError
from nrp.eval.adaptive import AdaptiveAttack, FixedRandomness, craft, defended_accuracy, evaluate_adaptive

from .conftest import BoundaryClassifier

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


@pytest.mark.parametrize("gradient", ["full", "identity"])
def test_pgd_with_eot_through_a_dynamic_defense_breaks_the_boundary_classifier(boundary_batch, gradient):
    x, y = boundary_batch
    attack = AdaptiveAttack("pgd", gradient=gradient, eot=4, steps=10, step_size=2 / 255)
    (row,) = evaluate_adaptive([attack], Noisy(), BoundaryClassifier(), x, y, EPS, draws=5)
    assert row.clean == 1.0
    assert row.single_draw == 0.0 and row.worst_of_n == 0.0
    assert row.attack == f"pgd {gradient} eot4"


def test_table3_with_an_identity_substitute_is_bpda_with_the_identity(boundary_batch):
    x, y = boundary_batch
    source = BoundaryClassifier()
    attack = AdaptiveAttack("table3", steps=10)
    with_substitute = craft(attack, nn.Identity(), source, x, y, EPS, torch.Generator().manual_seed(0), source, nn.Identity())
    bpda = craft(attack, nn.Identity(), source, x, y, EPS, torch.Generator().manual_seed(0), source, None)
    assert torch.equal(with_substitute, bpda)
    assert (with_substitute - x).abs().max() <= EPS + 1e-6


def test_table3_needs_a_source(boundary_batch):
    x, y = boundary_batch
    with pytest.raises(InputError, match="needs a source classifier"):
        craft(AdaptiveAttack("table3"), nn.Identity(), BoundaryClassifier(), x, y, EPS, torch.Generator())


@pytest.mark.parametrize(
    "value, message",
    [({"kind": "cw"}, "unknown adaptive attack kind 'cw'"), ({"kind": "pgd", "gradient": "substitute"}, "gradient must be"),
     ({"kind": "pgd", "eot": 0}, "eot must be >= 1"), ({"kind": "autoattack", "queries": 0}, "queries must be >= 1"),
     ({"kind": "pgd", "restarts": 2}, "unknown keys restarts"),
     ("pgd", "must be a mapping")],
)
def test_bad_attack_entries_are_refused(value, message):
    with pytest.raises(InputError, match=message):
        AdaptiveAttack.parse(value)


def test_nrp_eval_runs_the_adaptive_block_and_writes_its_table(boundary_images, tmp_path):
    from nrp.eval.config import EvalConfig
    from nrp.eval.experiment_file import check_config
    from nrp.eval.run import run_evaluation

    folder, labels = boundary_images
    config = EvalConfig(images=str(folder), labels=str(labels), image_size=24, out=str(tmp_path / "run"),
                        targets=["edge"], batch_size=3, adaptive={
                            "defense": "none", "target": "edge", "draws": 3, "source": "edge",
                            "attacks": [{"kind": "pgd", "eot": 2}, {"kind": "table3", "label": "Table 3 (BPDA)"}]})
    check_config(config)
    files = run_evaluation(config, {"edge": BoundaryClassifier()})
    table = files["adaptive_md"].read_text()
    assert "| pgd full eot2 | 100.0% | 0.0% | 0.0% | 3 |" in table
    assert "| Table 3 (BPDA) |" in table


def test_an_adaptive_block_without_a_source_for_table3_is_refused():
    from nrp.eval.config import EvalConfig
    from nrp.eval.experiment_file import check_config

    config = EvalConfig(images="x", out="y", targets=["t"], adaptive={"defense": "none", "target": "t",
                                                                      "attacks": [{"kind": "table3"}]})
    with pytest.raises(InputError, match="a table3 attack needs 'source'"):
        check_config(config)


def test_autoattack_rows_pass_their_eot_draws_queries_and_steps_to_the_adapter(boundary_batch, monkeypatch):
    import nrp.eval.adaptive as adaptive

    x, y = boundary_batch
    seen = []
    monkeypatch.setattr(adaptive, "autoattack", lambda model, x, y, **kw: seen.append(kw) or x)
    craft(AdaptiveAttack("autoattack", version="rand", eot=3, steps=4), nn.Identity(), BoundaryClassifier(), x, y, EPS,
          torch.Generator())
    craft(AdaptiveAttack("autoattack", queries=7), nn.Identity(), BoundaryClassifier(), x, y, EPS, torch.Generator())
    assert [(kw["version"], kw["eot_draws"], kw["steps"], kw["queries"]) for kw in seen] == [
        ("rand", 3, 4, 5000), ("standard", 20, 10, 7)]
