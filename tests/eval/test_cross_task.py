"""The cross-task protocol: stored label-free sets, scores of every (set, defense, model), resuming, known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pycocotools.coco import COCO
from torch import nn

from nrp.defenses import create_defense
from nrp.errors import InputError
from nrp.eval.coco import load_coco, read_mask
from nrp.eval.config import EvalConfig
from nrp.eval.experiment_file import load_eval_config
from nrp.eval.cross_task import run_cross_task
from nrp.eval.cross_task_config import CrossTaskConfig
from nrp.eval.reports.rows import as_cross_task_rows

# pycocotools' mask decoding trips a NumPy 2 deprecation warning of its own.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
SIZES = {"a": (64, 64), "b": (48, 64), "c": (64, 48)}  # (H, W); distinct, so stubs can tell images apart by size
ANNOTATED = {"a": 1, "b": 2}  # stem -> COCO id: detection on a and b
MASKED = ("b", "c")  # semantic segmentation on b and c
# (category id, name, [x, y, w, h]) per annotated image; the names are COCO's, so torchvision labels = category ids
OBJECTS = {"a": [(1, [4, 6, 30, 40]), (3, [36, 10, 20, 20])], "b": [(3, [10, 8, 40, 30])]}
CATEGORIES = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
EPS = 16
NUM_CLASSES = 3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three textured PNGs of different sizes, a COCO JSON for two, grey-level masks for two, a 'CDA' folder."""
    root = tmp_path_factory.mktemp("cross")
    rng = np.random.default_rng(0)
    for folder in ("images", "masks", "cda16"):
        (root / folder).mkdir()
    for stem, (height, width) in SIZES.items():
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{stem}.png")
        noisy = np.clip(pixels.astype(int) + rng.integers(-40, 41, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / "cda16" / f"{stem}.png")
    for stem in MASKED:
        mask = rng.integers(0, NUM_CLASSES, SIZES[stem], dtype=np.uint8)
        mask[0] = 255  # VOC's ignored boundary
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{stem}.png")
    images = [{"id": i, "file_name": f"{stem}.png", "height": SIZES[stem][0], "width": SIZES[stem][1]}
              for stem, i in ANNOTATED.items()]
    annotations = []
    for stem, objects in OBJECTS.items():
        for category, (x, y, w, h) in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": ANNOTATED[stem], "category_id": category,
                                "bbox": [x, y, w, h], "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
    (root / "instances.json").write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return root


def section(data: Path, **changes) -> dict:
    values = {"images": str(data / "images"), "annotations": str(data / "instances.json"), "masks": str(data / "masks"),
              "num_classes": NUM_CLASSES, "detectors": ["maskrcnn"], "segmenters": ["fcn"],
              "attacks": [{"name": "ssp", "steps": 3, "step_size": 0.01, "label": "SSP"},
                          {"name": "precomputed", "folder": str(data / "cda{eps}"), "label": "CDA"}]}
    return {**values, **changes}


def experiment(out: Path, cross: dict) -> EvalConfig:
    return EvalConfig(images="unused", out=str(out), targets=["unused"], eps=[EPS], seed=0, cross_task=cross)


def random_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    detector = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91, min_size=64, max_size=96,
        rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50, box_detections_per_img=20)
    segmenter = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
                                                             aux_loss=False)
    return {"maskrcnn": detector, "fcn": segmenter, "vgg16:conv3_3": ssp_features()}


def ssp_features() -> nn.Module:
    """SSP's feature extractor in these tests (under the default backbone:layer key), the same in every call."""
    torch.manual_seed(1)
    return nn.Conv2d(3, 4, 3)


DEFENSES = {"No defense": nn.Identity(), "MF": create_defense("median", window=3)}


@pytest.fixture(scope="module")
def main_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("run")
    return out, run_cross_task(experiment(out, section(data)), DEFENSES, "cpu", models=random_models())


def read_uint8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_rows_cover_every_set_defense_model_and_metric(main_run):
    _, rows = main_run
    as_cross_task_rows(rows)  # the report's own validation: known task, value a fraction, ...
    expected = {(attack, eps, defense, model, metric)
                for attack, eps in (("clean", 0), ("SSP", EPS), ("CDA", EPS)) for defense in DEFENSES
                for model, metric in (("maskrcnn", "bbox_map50"), ("maskrcnn", "segm_map50"),
                                      ("fcn", "pixel_accuracy"), ("fcn", "mean_iou"))}
    keys = [(r["attack"], r["eps"], r["defense"], r["model"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)) and set(keys) == expected
    tasks = {"bbox_map50": "detection", "segm_map50": "instance_segmentation", "pixel_accuracy": "semantic_segmentation",
             "mean_iou": "semantic_segmentation"}
    assert all(r["task"] == tasks[r["metric"]] and 0.0 <= r["value"] <= 1.0 for r in rows)


def test_ssp_images_are_stored_within_eps_and_differ_from_the_clean_ones(main_run, data):
    out, _ = main_run
    folder = out / "cross_task" / "sets" / "SSP" / f"eps{EPS}"
    assert sorted(p.name for p in folder.glob("*.png")) == ["a.png", "b.png", "c.png"]
    assert json.loads((folder / "manifest.json").read_text())["images"] == 3
    for stem in SIZES:
        clean, stored = read_uint8(data / "images" / f"{stem}.png"), read_uint8(folder / f"{stem}.png")
        assert stored.shape == clean.shape
        assert np.abs(stored - clean).max() <= EPS and (stored != clean).mean() > 0.5


def test_precomputed_images_are_clipped_into_the_eps_ball(main_run, data):
    out, _ = main_run
    for stem in SIZES:
        clean, noisy = read_uint8(data / "images" / f"{stem}.png"), read_uint8(data / "cda16" / f"{stem}.png")
        stored = read_uint8(out / "cross_task" / "sets" / "CDA" / f"eps{EPS}" / f"{stem}.png")
        np.testing.assert_array_equal(stored, np.clip(noisy, clean - EPS, clean + EPS))


def exploding(models: dict[str, nn.Module], names: tuple[str, ...] | None = None) -> dict[str, nn.Module]:
    """The same modules (same tensors, so the same fingerprints), but those in ``names`` fail when run."""
    def refuse(module, inputs):
        raise AssertionError("a finished run must not run any model")
    for name, module in models.items():
        if names is None or name in names:
            module.register_forward_pre_hook(refuse)
    return models


def test_a_rerun_regenerates_nothing_and_gives_the_same_rows(main_run, data):
    out, rows = main_run
    files = {p: p.stat().st_mtime_ns for p in (out / "cross_task").rglob("*") if p.is_file()}
    assert len([p for p in files if p.suffix == ".json" and "scores" in p.parts]) == 3 * 2 * 2
    again = run_cross_task(experiment(out, section(data)), DEFENSES, "cpu", models=exploding(random_models()))
    assert again == rows
    assert {p: p.stat().st_mtime_ns for p in (out / "cross_task").rglob("*") if p.is_file()} == files


def test_a_lost_score_is_recomputed_alone_and_equal(main_run, data):
    out, rows = main_run
    lost = out / "cross_task" / "scores" / "SSP" / f"eps{EPS}" / "MF" / "fcn.json"
    kept = {p: p.stat().st_mtime_ns for p in (out / "cross_task").rglob("*") if p.is_file() and p != lost}
    lost.unlink()
    models = exploding(random_models(), ("maskrcnn", "vgg16:conv3_3"))
    assert run_cross_task(experiment(out, section(data)), DEFENSES, "cpu", models=models) == rows
    assert lost.is_file()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept


def test_an_image_gets_the_same_ssp_perturbation_in_any_subset(main_run, data, tmp_path):
    # b is the second image of the main run and the first (and only) one here.
    out, _ = main_run
    cross = section(data, annotations=None, detectors=[], segmenters=["stub"], max_images=1, attacks=section(data)["attacks"][:1])
    run_cross_task(experiment(tmp_path, cross), {"none": nn.Identity()}, "cpu",
                   models={"stub": TrueMaskSegmenter(data), "vgg16:conv3_3": ssp_features()})
    alone = tmp_path / "cross_task" / "sets" / "SSP" / f"eps{EPS}"
    together = out / "cross_task" / "sets" / "SSP" / f"eps{EPS}"
    assert [p.name for p in alone.glob("*.png")] == ["b.png"]
    np.testing.assert_array_equal(read_uint8(alone / "b.png"), read_uint8(together / "b.png"))


class TrueBoxDetector(nn.Module):
    """Returns the ground truth (boxes, category labels, masks) of the annotated image of the input's size."""

    def __init__(self, coco: COCO) -> None:
        super().__init__()
        self.truth = {}
        for image in coco.loadImgs(coco.getImgIds()):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
            boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32)
            self.truth[(image["height"], image["width"])] = {
                "boxes": torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1),
                "labels": torch.tensor([a["category_id"] for a in anns]), "scores": torch.ones(len(anns)),
                "masks": torch.stack([torch.from_numpy(coco.annToMask(a)).float()[None] for a in anns])}

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [self.truth[tuple(image.shape[-2:])] for image in images]


class TrueMaskSegmenter(nn.Module):
    """Returns one-hot logits of the true mask of the masked image of the input's size."""

    def __init__(self, data: Path) -> None:
        super().__init__()
        self.truth = {SIZES[stem]: read_mask(data / "masks" / f"{stem}.png").clamp(max=NUM_CLASSES - 1) for stem in MASKED}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mask = self.truth[tuple(images.shape[-2:])]
        return nn.functional.one_hot(mask, NUM_CLASSES).permute(2, 0, 1)[None].float().expand(len(images), -1, -1, -1)


class UniformNoise(nn.Module):
    """A randomised defense drawing from the global RNG."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (torch.rand_like(x) - 0.5) / 255


def test_models_that_predict_the_ground_truth_score_one_under_every_attack(data, tmp_path):
    cross = section(data, detectors=["true_boxes"], segmenters=["true_masks"], eps=[8, 16])
    models = {"true_boxes": TrueBoxDetector(load_coco(data / "instances.json")), "true_masks": TrueMaskSegmenter(data),
              "vgg16:conv3_3": ssp_features()}
    (data / "cda8").mkdir(exist_ok=True)
    for path in (data / "cda16").glob("*.png"):
        (data / "cda8" / path.name).write_bytes(path.read_bytes())
    state = torch.get_rng_state()
    rows = run_cross_task(experiment(tmp_path, cross), {"none": nn.Identity(), "noise": UniformNoise()}, "cpu", models=models)
    assert torch.equal(torch.get_rng_state(), state)  # randomised defenses draw inside fork_rng
    assert len(rows) == (1 + 2 * 2) * 2 * 4  # (clean + 2 attacks x 2 eps) x 2 defenses x 4 metrics
    assert {r["metric"] for r in rows} == {"bbox_map50", "segm_map50", "pixel_accuracy", "mean_iou"}
    assert all(r["value"] == 1.0 for r in rows)


@pytest.mark.parametrize("changes, message", [
    ({"bogus": 1}, "unknown keys bogus; known: images, annotations"),
    ({"attacks": [{"name": "pgd"}]}, "'pgd' is not label-free"),
    ({"attacks": [{"name": "ssp", "momentum": 1.0}]}, "unknown parameters momentum"),
    ({"attacks": [{"name": "precomputed"}]}, "needs 'folder'"),
    ({"attacks": [{"name": "ssp", "label": "clean"}]}, "'clean' names the unattacked images"),
    ({"annotations": None, "masks": None}, "set 'annotations'"),
    ({"annotations": None}, "detectors maskrcnn need 'annotations'"),
    ({"eps": [300]}, r"\[0, 255\]"),
    ({"eps": ["8"]}, "eps must be a list of numbers"),
])
def test_bad_sections_raise_input_errors_naming_the_value(data, changes, message):
    with pytest.raises(InputError, match=message):
        CrossTaskConfig.parse(section(data, **changes))


def test_an_unknown_defense_label_is_refused(data, tmp_path):
    with pytest.raises(InputError, match="unknown labels JPEG; the experiment's defenses: No defense, MF"):
        run_cross_task(experiment(tmp_path, section(data, defenses=["JPEG"])), DEFENSES, "cpu", models={})


def test_defaults_follow_the_datasets_given(data):
    detection = CrossTaskConfig.parse({"images": "x", "annotations": "y.json"}, default_eps=[8, 16])
    assert (detection.detectors, detection.segmenters, detection.eps) == (["maskrcnn", "retinanet"], [], [8, 16])
    segmentation = CrossTaskConfig.parse({"images": "x", "masks": "m"})
    assert (segmentation.detectors, segmentation.segmenters, segmentation.num_classes) == ([], ["deeplabv3"], 21)


def test_the_table2_experiment_file_loads():
    config = load_eval_config(ROOT / "configs" / "table2_cda.yaml", {})
    cross = CrossTaskConfig.parse(config.cross_task, config.eps)
    assert cross.detectors == ["maskrcnn", "retinanet"] and cross.max_images == 500
    assert {a.name for a in cross.attack_components()} == {"ssp", "precomputed"}
    assert cross.eps == [8, 16]
