import inspect

import pytest
import torch

import nrp.attacks as attacks
from nrp.attacks import ATTACKS, get_attack, register
from nrp.attacks.registry import variant
from nrp.errors import InputError

PAPER_NAMES = ["fgsm", "r_fgsm", "i_fgsm", "pgd", "mi_fgsm", "dim", "ti_fgsm", "mi_ti_fgsm", "dim_ti_fgsm",
               "mi_dim_ti_fgsm", "fff", "ssp", "cda"]
LATER_NAMES = ["fia", "naa", "ilpd", "ila", "bsr", "admix", "autoattack", "apgd"]  # feature-level and input-transformation transfer attacks
FEATURE_LEVEL = {"fia", "naa", "ilpd", "ila"}


def test_every_paper_attack_is_registered_under_its_lower_case_name_and_exported():
    assert sorted(ATTACKS) == sorted(PAPER_NAMES + LATER_NAMES)
    for name in PAPER_NAMES + LATER_NAMES:
        assert get_attack(name) is getattr(attacks, name)


@pytest.mark.parametrize("name", sorted(set(PAPER_NAMES + LATER_NAMES) - {"fff", "ssp", "cda"}))
def test_classifier_attacks_share_one_calling_convention(name):
    parameters = list(inspect.signature(ATTACKS[name]).parameters.values())
    assert [p.name for p in parameters[:4]] == ["model", "x", "y", "eps"]
    assert parameters[2].default is None and parameters[3].default == 16 / 255
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[4:])
    if name in FEATURE_LEVEL:  # untargeted by design, on a named layer
        assert "layer" in {p.name for p in parameters[4:]} and "target" not in {p.name for p in parameters}
    elif name in ("autoattack", "apgd"):  # untargeted (APGD-T and FAB-T choose their own targets)
        assert "generator" in {p.name for p in parameters[4:]} and "target" not in {p.name for p in parameters}
    else:
        assert {"target", "generator"} <= {p.name for p in parameters[4:]}


def test_unknown_names_raise_with_the_known_ones():
    with pytest.raises(InputError, match=r"unknown attack 'mifgsm'; known: admix, apgd, autoattack, bsr, cda, dim, dim_ti_fgsm, fff, fgsm, fia, i_fgsm"):
        get_attack("mifgsm")


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(InputError, match="attack 'fgsm' is already registered"):
        register("fgsm")(lambda model, x: x)
    assert ATTACKS["fgsm"] is attacks.fgsm


def test_a_variant_is_its_attack_with_other_defaults_that_its_signature_shows(classifier, make_images):
    x, y = make_images(0), torch.tensor([0, 3, 5, 9])
    signature = inspect.signature(attacks.dim_ti_fgsm).parameters
    assert signature["ti_kernel"].default == 15 and inspect.signature(attacks.dim).parameters["ti_kernel"].default is None
    assert [p.name for p in signature.values()] == list(inspect.signature(attacks.dim).parameters)
    same = torch.equal(attacks.dim_ti_fgsm(classifier, x, y, generator=torch.Generator().manual_seed(1)),
                       attacks.dim(classifier, x, y, ti_kernel=15, generator=torch.Generator().manual_seed(1)))
    # a setting given at the call wins over the variant's own
    given = torch.equal(attacks.dim_ti_fgsm(classifier, x, y, ti_kernel=3, generator=torch.Generator().manual_seed(1)),
                        attacks.dim(classifier, x, y, ti_kernel=3, generator=torch.Generator().manual_seed(1)))
    assert same and given
    assert attacks.dim_ti_fgsm.__name__ == "dim_ti_fgsm" and inspect.getdoc(attacks.dim_ti_fgsm).startswith("TI-DIM")


def test_a_variant_can_only_set_keyword_only_parameters():
    with pytest.raises(InputError, match="has no keyword-only parameter eps, kernel to set"):
        variant(attacks.dim, "bad", "Bad.", kernel=3, eps=0.1)
