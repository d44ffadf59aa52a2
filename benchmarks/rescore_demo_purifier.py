"""Score another purifier file on a finished ``nrp demo`` run's stored adversarial sets (black-box Lite2 only).

The demo's attacks never see the purifier, so a purifier file can be compared with the shipped one on exactly
the same adversarial images without crafting them again: this copies the run's ``sets/`` into ``OUT`` and runs
the demo's experiment (:func:`nrp.offline.demo.demo_config`, or :func:`~nrp.offline.demo.grey_box_config` with
``--grey-box``) with two defenses, none and the static NRP defense on ``--weights`` (default: the previous
shipped file, :data:`nrp.purifiers.shipped.PREVIOUS_FILE`), and the one target Lite2. ``run_evaluation`` finds
every set under its fingerprint and only scores; the undefended cells must equal the run's. Checked on the
foolbox run with the stage-2 default: it reproduced all 30 Lite2 cells of the earlier run with the previous
file exactly.

Usage::

    PYTHONPATH=src python benchmarks/rescore_demo_purifier.py RUN IMAGES LABELS OUT [--grey-box] [--weights FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

from nrp.eval.run import run_evaluation
from nrp.offline.demo import BLACK_BOX_TARGET, MOBILENET_V2, demo_config, grey_box_config
from nrp.purifiers.shipped import PREVIOUS_FILE
from nrp.zoo.package_models import mobilenet_v2_weights


def main() -> None:
    """Parse the arguments, copy the sets, score, print the report files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished demo run folder (or its grey_box/ folder)")
    parser.add_argument("images", type=Path, help="the run's photos")
    parser.add_argument("labels", type=Path, help="the run's labels CSV")
    parser.add_argument("out", type=Path, help="new run folder for the scores")
    parser.add_argument("--grey-box", action="store_true", help="the run is the grey-box group")
    parser.add_argument("--weights", type=Path, default=PREVIOUS_FILE, help="purifier file (default: the previous shipped one)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "sets").exists():
        shutil.copytree(args.run / "sets", args.out / "sets")
    if args.grey_box:
        config = grey_box_config(args.images, args.labels, args.out)
    else:
        config = demo_config(args.images, args.labels, args.out, model_weights={MOBILENET_V2: str(mobilenet_v2_weights(None))})
    label = f"NRP-Lite ({args.weights.name})"
    defenses = [{"name": "none", "label": "No defense"},
                {"name": "nrp", "weights": str(args.weights), "architecture": "nrp_lite", "label": label}]
    config = dataclasses.replace(config, defenses=defenses, targets=[BLACK_BOX_TARGET], curves=None, grid_defense=label)
    print(run_evaluation(config))


if __name__ == "__main__":
    main()
