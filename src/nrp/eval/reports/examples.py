"""Which photos the report's image grid shows: a stated rule that shows the defense's successes and failures.

A grid of the first photos shows whatever happens to come first (often only failures, while the table says
the defense restores half of them). The rule here is fixed in advance and printed under the grid: among the
photos the attack fools (undefended prediction not the true label), the first in file order that the defense
restores, then the first it does not restore, half each when both exist; photos the attack does not fool
fill the grid only when there are too few fooled ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExampleChoice:
    """The grid's rows and the rule that chose them.

    Attributes:
        indices: positions of the chosen photos in the evaluation set, restored ones first.
        restored: how many of ``indices`` (the first ones) the defense restores.
        failed: how many (after those) the attack fools and the defense does not restore.
        rule: the rule, in one sentence, for the grid's caption.
    """

    indices: list[int]
    restored: int
    failed: int
    rule: str


def choose_examples(
    truth: Sequence[int], attacked: Sequence[int], defended: Sequence[int], count: int, defense: str,
    reference: str = "the true label",
) -> ExampleChoice:
    """The rows of the grid: up to ``count`` photos the attack fools, half restored by the defense, half not.

    Args:
        truth: per photo, the label predictions are judged against (true labels, or clean predictions when the
            set has none; ``reference`` names which).
        attacked: per photo, the undefended target's prediction on the adversarial image.
        defended: per photo, the prediction behind ``defense`` on the adversarial image.
        count: rows wanted (at most the number of photos).
        defense: the defense's name, for the rule's text.
        reference: what ``truth`` is, for the rule's text.

    Example:
        >>> choice = choose_examples([0, 1, 2, 3, 4], [9, 9, 9, 3, 9], [0, 9, 2, 3, 9], 4, "NRP")
        >>> choice.indices, choice.restored, choice.failed
        ([0, 2, 1, 4], 2, 2)
    """
    if not len(truth) == len(attacked) == len(defended):
        raise ValueError(f"per-photo lists of different lengths: {len(truth)}, {len(attacked)}, {len(defended)}")
    fooled = [i for i in range(len(truth)) if attacked[i] != truth[i]]
    restored = [i for i in fooled if defended[i] == truth[i]]
    failed = [i for i in fooled if defended[i] != truth[i]]
    count = min(count, len(truth))
    take_restored = min(len(restored), max((count + 1) // 2, count - len(failed)))
    take_failed = min(len(failed), count - take_restored)
    chosen = restored[:take_restored] + failed[:take_failed]
    filler = [i for i in range(len(truth)) if i not in fooled][: count - len(chosen)]
    rule = (f"the first {take_restored} photos (in file order) that the attack fools and {defense} restores, then the "
            f"first {take_failed} that it fools and {defense} does not restore (fooled: the undefended prediction is "
            f"not {reference}; {len(restored)} restored and {len(failed)} not restored of {len(fooled)} fooled)")
    if filler:
        rule += f", then {len(filler)} the attack does not fool"
    return ExampleChoice(chosen + filler, take_restored, take_failed, rule)
