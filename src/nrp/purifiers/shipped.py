"""The purifier that ships inside the package, so ``nrp purify IMAGE`` works offline with no weights file.

It is an NRP-Lite trained by this project's own ``nrp train`` on the unlabelled offline photos, against SSP on
an early stage of EfficientNet-Lite0 (docs/offline_benchmark.md has the exact commands, data and validation
numbers). The previous default, ``nrp_lite_effl0.safetensors``, stays beside it for comparison
(``PREVIOUS_FILE``). The authors' much larger NRP (``NRP.pth``) is stronger: pass it with ``--weights`` when you have it.
"""

from __future__ import annotations

from pathlib import Path

from nrp.errors import WeightsUnavailableError

SHIPPED_FILE = Path(__file__).parent / "weights" / "nrp_lite_effl0_stage2.safetensors"
SHIPPED_TRAINING = (
    "nrp train (configs/nrp_lite_offline.yaml) for 1,900 iterations on 41 unlabelled offline photos, then 280 "
    "warm-started stage-1/2 iterations on 515 photos (issue 13), against SSP at 16/255 on EfficientNet-Lite0's "
    "_blocks.4 features (docs/offline_benchmark.md)"
)
"""What the shipped purifier was trained against, for reports (the weights file records only its architecture)."""
PREVIOUS_FILE = Path(__file__).parent / "weights" / "nrp_lite_effl0.safetensors"
"""The default before issue 13's stage 2 (1,900 iterations on 41 photos), kept so tables can show each column's move."""


def shipped_weights() -> Path:
    """The shipped purifier's weights file.

    Raises:
        WeightsUnavailableError: the file is missing from this installation (a broken install or a source
            checkout without it); the message says how to pass weights instead.
    """
    if not SHIPPED_FILE.is_file():
        raise WeightsUnavailableError(
            f"the shipped purifier {SHIPPED_FILE.name} is missing from this installation ({SHIPPED_FILE.parent}); "
            "reinstall nrp-purifier, or pass a purifier weights file (e.g. the authors' NRP.pth)"
        )
    return SHIPPED_FILE
