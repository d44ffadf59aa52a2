import pytest
import torch
from torch import nn

from nrp.defenses import DEFENSES, create_defense, register_defense
from nrp.errors import InputError

NAMES = {"none", "jpeg", "jpeg_differentiable", "tvm", "median", "random_resize_pad", "bit_depth", "gaussian", "nrp",
         "nrp_dynamic", "nrp_lite_shipped", "nrp_lite_shipped_dynamic"}


def test_names():
    assert set(DEFENSES) == NAMES


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown defense 'jpg'; known: bit_depth, gaussian, jpeg"):
        create_defense("jpg")


def test_unknown_parameter_lists_the_accepted_ones():
    with pytest.raises(InputError, match="'qualty'; accepted: quality, subsampling"):
        create_defense("jpeg", qualty=50)
    with pytest.raises(InputError, match="accepted: none"):
        create_defense("none", window=3)


def test_the_shipped_purifier_is_a_defense_of_its_own_name_and_nrp_never_falls_back_to_it():
    from nrp.errors import InputError
    from nrp.purifiers import load_network, shipped_weights
    shipped = load_network(shipped_weights()).state_dict()
    for name in ("nrp_lite_shipped", "nrp_lite_shipped_dynamic"):
        network = create_defense(name).network.state_dict()
        assert network.keys() == shipped.keys()
        assert all(torch.equal(network[key], shipped[key]) for key in shipped)
    for name in ("nrp", "nrp_dynamic"):
        with pytest.raises(InputError, match=f"the {name} defense needs a purifier weights file"):
            create_defense(name)


def test_duplicate_name():
    with pytest.raises(ValueError, match="already registered"):
        register_defense("median", nn.Identity)


def test_parameters_reach_the_module():
    assert create_defense("jpeg", quality=20).quality == 20
    assert create_defense("median", window=5).window == 5
    assert create_defense("bit_depth", bits=3).bits == 3
    assert create_defense("gaussian", sigma=2.0).kernel_size == 13


def test_tvm_from_the_papers_weight_or_lamb():
    assert create_defense("tvm", weight=10).lamb == pytest.approx(0.03)
    assert create_defense("tvm", weight=30).lamb == pytest.approx(0.01)
    assert create_defense("tvm", lamb=0.2).lamb == 0.2
    assert create_defense("tvm").lamb == 0.03
    with pytest.raises(InputError, match="not both"):
        create_defense("tvm", weight=10, lamb=0.1)
    with pytest.raises(InputError, match="weight"):
        create_defense("tvm", weight=0)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [("jpeg", {"quality": 0}, "quality must be an integer in 1..100, got 0"),
     ("jpeg_differentiable", {"quality": 101}, "quality"),
     ("median", {"window": 2}, "window must be an odd integer >= 1, got 2"),
     ("bit_depth", {"bits": 9}, "bits must be an integer in 1..8, got 9"),
     ("tvm", {"keep_prob": 0}, r"keep_prob must be a number in \(0.0, 1.0\], got 0"),
     ("gaussian", {"sigma": -1}, "sigma"),
     ("random_resize_pad", {"output_size": 1}, "output_size")],
)
def test_bad_values_name_the_value_and_range(name, params, match):
    with pytest.raises(InputError, match=match):
        create_defense(name, **params)


def test_check_defense_refuses_what_create_defense_refuses_naming_the_parameter_and_loads_nothing():
    from nrp.defenses import check_defense
    from nrp.errors import InputError, ParameterError
    for name, params, parameter in [("median", {"window": 4}, "window"), ("jpeg", {"quality": 0}, "quality"),
                                    ("bit_depth", {"bits": 9}, "bits"), ("gaussian", {"sigma": 0.0}, "sigma"),
                                    ("tvm", {"norm": 3}, "norm"), ("tvm", {"keep_prob": 2.0}, "keep_prob"),
                                    ("random_resize_pad", {"output_size": 1}, "output_size"),
                                    ("nrp_lite_shipped", {"tile_overlap": -1}, "tile_overlap"),
                                    ("nrp", {}, "weights"), ("nrp_dynamic", {"weights": "w.pth", "noise_std": -1.0}, "noise_std")]:
        for run in (check_defense, create_defense):
            with pytest.raises(ParameterError) as caught:
                run(name, **params)
            assert caught.value.parameter == parameter, (name, run)
    with pytest.raises(InputError, match="takes no parameter 'windw'"):
        check_defense("median", windw=3)
    check_defense("nrp", weights="no/such/file.pth")  # the file is the run's (or the schema's) to open
    check_defense("median", window=5)
