"""Cutting a classifier at a named layer, and the shared loop's many-copy transformation and custom loss."""

import pytest
import torch
from torch import nn

from nrp.attacks import LayerOutput, find_layer, iterative_attack
from nrp.attacks.layers import replaced_output
from nrp.errors import InputError


def test_layer_output_is_the_layers_activation_and_runs_no_later_layer(classifier, make_images):
    x = make_images(0)
    calls = []
    classifier[8].register_forward_hook(lambda *args: calls.append("linear"))
    expected = classifier[:4](x)
    assert torch.equal(LayerOutput(classifier, "3")(x), expected)
    assert calls == []
    classifier(x)
    assert calls == ["linear"]


def test_unknown_layers_name_some_real_ones(classifier):
    with pytest.raises(InputError, match=r"model has no layer 'layer9'; its layers include: 0, 1, 2, 3"):
        find_layer(classifier, "layer9")


def test_replaced_output_rewrites_the_layer_only_inside_the_block(classifier, make_images):
    x = make_images(1)
    before = classifier(x)
    with replaced_output(classifier[4], torch.zeros_like):
        constant = classifier(x)
    assert torch.allclose(constant, constant[:1].expand_as(constant))  # nothing of x gets past the layer
    assert torch.equal(classifier(x), before)


def test_a_many_copy_transformation_sums_the_copies_gradients(classifier64, make_images):
    # Two identical copies double every gradient: the same signs, the same momentum steps.
    x, y = make_images(2, dtype=torch.float64), torch.tensor([1, 2, 3, 4])
    twice = iterative_attack(classifier64, x, y, eps=8 / 255, step_size=1 / 255, steps=5, momentum=1.0,
                             input_transform=lambda x_t, g: torch.cat([x_t, x_t]))
    once = iterative_attack(classifier64, x, y, eps=8 / 255, step_size=1 / 255, steps=5, momentum=1.0)
    assert torch.allclose(twice, once, atol=1e-15, rtol=0)


@pytest.mark.parametrize("options", [{"target": "random"}, {}, {"loss": lambda out, y: out[:, 0].sum()}])
def test_copies_in_several_passes_give_the_one_pass_attack(classifier64, make_images, options):
    # Three distinct copies of 4 images in passes of 5 (ragged, labels split across passes) or of 1; random
    # targets and the model's own labels are settled once, on the first pass.
    x = make_images(2, dtype=torch.float64)
    def copies(x_t, g):
        return torch.cat([x_t, 0.5 * x_t, x_t.flip(-1)])
    def run(pass_size):
        return iterative_attack(classifier64, x, eps=8 / 255, step_size=1 / 255, steps=4, momentum=1.0,
                                input_transform=copies, pass_size=pass_size, generator=torch.Generator().manual_seed(1),
                                **options)
    one = run(None)
    for pass_size in (12, 13, 5, 1):  # one pass of all 12 copies (exactly, and with room), several
        assert torch.allclose(run(pass_size), one, atol=1e-12, rtol=0)
    assert not torch.allclose(one, iterative_attack(classifier64, x, eps=8 / 255, step_size=1 / 255, steps=4,
                                                    momentum=1.0, generator=torch.Generator().manual_seed(1),
                                                    **options), atol=1e-6)


def test_a_custom_loss_is_ascended(make_images):
    # Ascending sum(x) moves every pixel up by the whole budget.
    x = torch.full((1, 3, 4, 4), 0.5)
    x_adv = iterative_attack(nn.Identity(), x, eps=4 / 255, step_size=1 / 255, steps=6, loss=lambda out, y: out.sum())
    assert torch.allclose(x_adv, x + 4 / 255)


def test_the_new_options_refuse_combinations_they_cannot_honour(classifier, make_images):
    x = make_images(3)
    with pytest.raises(InputError, match="either input_transform or diversity_prob"):
        iterative_attack(classifier, x, eps=0.1, step_size=0.01, steps=1, diversity_prob=0.5,
                         input_transform=lambda x_t, g: x_t)
    with pytest.raises(InputError, match="targeted attacks use the cross-entropy"):
        iterative_attack(classifier, x, eps=0.1, step_size=0.01, steps=1, target="random", loss=lambda o, y: o.sum())
