"""Tables, results.json, CSV, HTML and write_report of nrp.eval.reports."""

from __future__ import annotations

import base64
import csv
import html.parser
import importlib.util
import json
import logging
import re
import sys
import urllib.parse
from pathlib import Path

import pytest
import torch

import nrp
from nrp.errors import InputError
from nrp.eval.reports import (
    CrossTaskRow,
    Row,
    Section,
    classification_tables,
    cross_task_markdown,
    cross_task_table,
    image_grid,
    markdown_table,
    read_csv,
    read_results_json,
    write_csv,
    write_html,
    write_markdown,
    write_report,
    write_results_json,
)

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def row(source: str, attack: str, eps: float, defense: str, target: str = "lite2", **metrics) -> dict:
    return {"source": source, "attack": attack, "eps": eps, "defense": defense, "target": target, "images": 20, **metrics}


ROWS = [
    row("-", "clean", 0, "none", top1=0.9),
    row("-", "clean", 0, "jpeg", top1=0.85),
    row("lite0", "fgsm", 16, "none", top1=0.5, success_rate=0.5, fooling_rate=0.45, clean_top1=0.9),
    row("lite0", "mi_fgsm", 16, "none", top1=0.4, success_rate=0.6, clean_top1=0.9),
    row("lite0", "fgsm", 16, "jpeg", top1=0.75, success_rate=0.25),
    row("lite0+lite1", "ssp", 16, "jpeg", top1=0.7, success_rate=0.3, clean_top1=0.85),
    row("lite0+lite1", "fgsm", 8, "jpeg", top1=0.8, success_rate=0.2),
    # another target; its "none" defense has no clean row, so its clean column comes from clean_top1
    row("lite0", "fgsm", 16, "none", target="lite3", top1=0.6, success_rate=0.4, clean_top1=0.7),
]

EXPECTED_SUCCESS = """\
### Target: lite2 — attack success rate (%)

| Source | Defense | clean top-1 | fgsm ε=16 | fgsm ε=8 | mi_fgsm | ssp |
| :-- | :-- | --: | --: | --: | --: | --: |
| lite0 | none | 90.0 | 50.0 | – | 60.0 | – |
|  | jpeg | 85.0 | 25.0 | – | – | – |
| lite0+lite1 | jpeg | 85.0 | – | 20.0 | – | 30.0 |

### Target: lite3 — attack success rate (%)

| Source | Defense | clean top-1 | fgsm |
| :-- | :-- | --: | --: |
| lite0 | none | 70.0 | 40.0 |
"""


def cross(task: str, attack: str, eps: float, defense: str, metric: str, value: float) -> dict:
    return {"task": task, "attack": attack, "eps": eps, "defense": defense, "model": "maskrcnn", "metric": metric, "value": value}


CROSS = [
    cross("detection", "clean", 0, "none", "bbox_map50", 0.599),
    cross("detection", "ssp", 16, "none", "bbox_map50", 0.081),
    cross("detection", "ssp", 16, "nrp", "bbox_map50", 0.5),
    cross("instance_segmentation", "cda", 8, "nrp", "segm_map50", 0.45),
]

EXPECTED_CROSS = """\
### Cross-task results (%)

| Task | Model | Metric | Defense | clean | ssp | cda |
| :-- | :-- | :-- | :-- | --: | --: | --: |
| detection | maskrcnn | bbox_map50 | none | 59.9 | 8.1 | – |
|  |  |  | nrp | – | 50.0 | – |
| instance_segmentation | maskrcnn | segm_map50 | nrp | – | – | 45.0 |
"""


# ---- tables -------------------------------------------------------------------------------------------------


def test_markdown_table_matches_table_1_layout() -> None:
    assert markdown_table(ROWS, metric="success_rate") == EXPECTED_SUCCESS


def test_markdown_table_other_metric_and_single_target() -> None:
    text = markdown_table(ROWS, metric="fooling_rate", target="lite2")
    assert "lite3" not in text
    assert text.splitlines()[0] == "### Target: lite2 — fooling rate (%)"
    assert "| lite0 | none | 90.0 | 45.0 | – | – | – |" in text.splitlines()


def test_markdown_table_accepts_row_objects_like_dicts() -> None:
    assert markdown_table([Row(**r) for r in ROWS]) == EXPECTED_SUCCESS


def test_cross_task_markdown() -> None:
    assert cross_task_markdown(CROSS) == EXPECTED_CROSS


def test_tables_reject_bad_input() -> None:
    with pytest.raises(InputError, match="unknown metric 'top2'"):
        markdown_table(ROWS, metric="top2")
    with pytest.raises(InputError, match="no results for target 'vgg'"):
        markdown_table(ROWS, target="vgg")
    with pytest.raises(InputError, match="two results"):
        markdown_table([*ROWS, ROWS[2]])
    with pytest.raises(InputError, match="two results"):
        cross_task_table([*CROSS, CROSS[1]])
    with pytest.raises(InputError, match=r"unknown keys \['top_1'\]"):
        markdown_table([{**ROWS[0], "top_1": 0.5}])
    with pytest.raises(InputError, match="top1 must be a fraction"):
        markdown_table([{**ROWS[0], "top1": 85.0}])
    with pytest.raises(InputError, match="unknown task 'tracking'"):
        cross_task_markdown([{**CROSS[0], "task": "tracking"}])


def test_markdown_escapes_pipes() -> None:
    text = markdown_table([row("a|b", "fgsm", 16, "none", top1=0.5, success_rate=0.5)])
    assert "| a\\|b | none |" in text


def test_write_markdown(tmp_path: Path) -> None:
    path = write_markdown(tmp_path / "r" / "results.md", ROWS, CROSS, metrics=("success_rate", "top5"))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Results\n")
    assert EXPECTED_SUCCESS in text and EXPECTED_CROSS in text
    assert "Top-5" not in text  # no record has top5, so no table for it
    assert [p.name for p in path.parent.iterdir()] == ["results.md"]  # no temporary file left


# ---- results.json and CSV ------------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "results.csv", ROWS)
    with open(path, newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["source", "attack", "eps", "defense", "target", "images", "top1", "top5", "success_rate",
                        "fooling_rate", "clean_top1", "fingerprint"]
    assert len(lines) == len(ROWS) + 1
    assert lines[3] == ["lite0", "fgsm", "16", "none", "lite2", "20", "0.5", "", "0.5", "0.45", "0.9", ""]
    assert read_csv(path) == [Row(**r) for r in ROWS]


def test_rows_without_labels_show_missing_cells_and_round_trip(tmp_path: Path) -> None:
    unlabelled = [row("clean", "clean", 0, "none", top1=None), row("lite0", "ssp", 16, "none", top1=None, fooling_rate=0.25)]
    assert markdown_table(unlabelled, metric="top1").splitlines()[-1] == "| lite0 | none | – | – |"
    assert markdown_table(unlabelled, metric="fooling_rate").splitlines()[-1] == "| lite0 | none | – | 25.0 |"
    assert read_csv(write_csv(tmp_path / "r.csv", unlabelled)) == [Row(**r) for r in unlabelled]


def test_csv_round_trip_cross_task(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cross.csv", [CrossTaskRow(**r) for r in CROSS])
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["task", "attack", "eps", "defense", "model", "metric", "value", "fingerprint"]
    assert read_csv(path) == [CrossTaskRow(**r) for r in CROSS]


def test_results_json_round_trip(tmp_path: Path) -> None:
    config = {"targets": ["lite2", "lite3"], "eps": 16, "weights": tmp_path / "w.safetensors"}
    path = write_results_json(tmp_path / "results.json", ROWS, CROSS, config, seed=7, extra={"seconds": 1.5})
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["seed"] == 7 and raw["extra"] == {"seconds": 1.5}
    assert raw["config"] == {"targets": ["lite2", "lite3"], "eps": 16, "weights": str(tmp_path / "w.safetensors")}
    versions = raw["versions"]
    assert versions["nrp"] == nrp.__version__ and versions["torch"] == torch.__version__
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"torchvision", "numpy"} <= set(versions)
    assert raw["created_utc"].endswith("+00:00")
    assert raw["threads"] == torch.get_num_threads()
    back = read_results_json(path)
    assert back["rows"] == [Row(**r) for r in ROWS]
    assert back["cross_task_rows"] == [CrossTaskRow(**r) for r in CROSS]
    assert raw["rows"][0] == Row(**ROWS[0]).to_dict()


def test_results_json_rejects_unserialisable_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write a object"):
        write_results_json(tmp_path / "results.json", ROWS, [], {"model": object()}, seed=0)
    with pytest.raises(InputError, match="cannot write results.json"):
        write_results_json(tmp_path / "results.json", ROWS, [], {"x": float("nan")}, seed=0)
    assert not any(tmp_path.iterdir())


def test_read_results_json_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(InputError, match="not an nrp results file"):
        read_results_json(tmp_path / "other.json")


# ---- HTML ------------------------------------------------------------------------------------------------------


class PageParser(html.parser.HTMLParser):
    """Collects the rows of every table, image sources, link targets and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.pre: list[str] = []
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag == "img":
            self.images.append(values["src"])

    def handle_endtag(self, tag: str) -> None:
        self._tag = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._tag in ("td", "th") and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(data)
        if self._tag == "pre":
            self.pre.append(data)


def parse(path: Path) -> tuple[PageParser, str]:
    source = path.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(source)
    parser.close()
    return parser, source


def test_write_html_tables_images_escaping(tmp_path: Path) -> None:
    rows = [*ROWS, row("lite0", "fgsm", 16, "<b>", top1=0.5, success_rate=0.5)]
    image = tmp_path / "plots" / "a b.png"
    image_grid([[torch.zeros(3, 8, 8)]], [["x"]], image)
    sections = [
        Section("Success & rate", text="1 < 2", tables=classification_tables(rows)),
        Section("Cross", tables=[cross_task_table(CROSS)], images=[image]),
        Section("Configuration", preformatted='{"defense": "<script>"}'),
    ]
    path = write_html(tmp_path / "page" / "index.html", "Report <1>", sections)
    page, source = parse(path)
    assert [len(t) for t in page.tables] == [1 + 4, 1 + 1, 1 + 3]  # header + body rows per table
    assert page.tables[0][3][:3] == ["<b>", "–", "50.0"]  # lite0's third defense, no clean row (parser unescapes)
    assert "&lt;b&gt;" in source and "<b>" not in source
    assert "&lt;script&gt;" in source and "<script" not in source
    assert "Report &lt;1&gt;" in source and "1 &lt; 2" in source and "Success &amp; rate" in source
    assert page.pre == ['{"defense": "<script>"}']
    assert page.images == ["../plots/a%20b.png"]
    for src in page.images:
        assert (path.parent / urllib.parse.unquote(src)).resolve() == image.resolve()
    assert "http" not in source.lower()
    assert "<link" not in source and "<script" not in source


def test_write_html_embeds_images(tmp_path: Path) -> None:
    image = image_grid([[torch.zeros(3, 8, 8)]], [["x"]], tmp_path / "g.png")
    path = write_html(tmp_path / "index.html", "t", [Section("s", images=[image])], embed_images=True)
    page, _ = parse(path)
    assert len(page.images) == 1 and page.images[0].startswith("data:image/png;base64,")
    assert base64.b64decode(page.images[0].split(",", 1)[1]) == image.read_bytes()


def test_write_html_rejects_missing_image(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        write_html(tmp_path / "index.html", "t", [Section("s", images=[tmp_path / "nope.png"])])
    assert not (tmp_path / "index.html").exists()


# ---- write_report -------------------------------------------------------------------------------------------


CURVES = {
    "iterations": [
        {"attack": a, "iterations": n, "fooling_rate": 0.1 * n / 10, "feature_distortion": 1.0 + n / 10, "top1": 0.5}
        for a in ("i_fgsm", "mi_fgsm", "ssp") for n in (1, 5, 10)
    ],
    "eps": [{"attack": "ssp", "eps": e, "top1": 1 - e / 32} for e in (4, 8, 16)],
}


def test_write_report(tmp_path: Path) -> None:
    grid = image_grid([[torch.rand(3, 8, 8), torch.rand(3, 8, 8)]], [["cat ✓", "dog ✗"]], tmp_path / "grids" / "g.png")
    out = tmp_path / "report"
    written = write_report(out, ROWS, CROSS, {"targets": ["lite2"]}, 3, [grid], CURVES)
    plots = {"plot_iterations", "plot_accuracy_vs_iterations", "plot_accuracy_vs_eps"} if HAS_MATPLOTLIB else set()
    assert set(written) == {"json", "csv", "cross_task_csv", "markdown", "html", "report_markdown", *plots}
    assert all(p.is_file() and p.parent == out for p in written.values())
    assert read_results_json(written["json"])["config"] == {"targets": ["lite2"]}
    assert read_csv(written["csv"]) == [Row(**r) for r in ROWS]
    assert EXPECTED_SUCCESS in written["markdown"].read_text(encoding="utf-8")
    page, source = parse(written["html"])
    # success rate (2 targets), fooling rate (2), top-1 (2), cross-task (1); top-5 has no values
    assert len(page.tables) == 7
    assert len(page.images) == 1 + len(plots)
    for src in page.images:
        assert (out / urllib.parse.unquote(src)).is_file()
    assert '"seed": 3' in "".join(page.pre)
    assert "http" not in source.lower()


def test_write_report_without_matplotlib_warns_and_skips_plots(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib... raises ImportError
    with caplog.at_level(logging.WARNING, logger="nrp.eval.reports.report"):
        written = write_report(tmp_path, ROWS, [], {}, 0, [], CURVES)
    assert not any(key.startswith("plot") for key in written)
    assert "cross_task_csv" not in written
    assert "pip install 'nrp-purifier[eval]'" in caplog.text
    assert not list(tmp_path.glob("*.png"))
    assert written["html"].is_file()


def test_write_report_rejects_missing_grid_and_unknown_curves(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="image grids not found"):
        write_report(tmp_path / "a", ROWS, [], {}, 0, [tmp_path / "nope.png"])
    with pytest.raises(InputError, match="unknown curve kinds"):
        write_report(tmp_path / "b", ROWS, [], {}, 0, [], {"steps": []})


DEMO_LIKE = {
    "images": "photos", "labels": "labels.csv", "image_size": 224, "eps": [16.0],
    "sources": ["lite0", "lite0+lite1"], "targets": ["lite2", "lite0"],
    "attacks": [{"name": "ssp", "backbone": "lite0", "layer": "_blocks.4", "label": "SSP"}, {"name": "fgsm", "label": "FGSM"}],
    "defenses": [{"name": "none", "label": "No defense"}, {"name": "nrp_lite_shipped", "label": "NRP-Lite"},
                 {"name": "nrp", "weights": "mine.pth", "label": "Mine"}],
    "grid_defense": "NRP-Lite",
    "curves": {"source": "lite0", "target": "lite2", "images": 10, "eps": 16, "backbone": "lite0", "layer": "_blocks.4"},
}


def test_the_header_names_models_roles_photos_budget_and_purifier():
    from nrp.eval.reports.header import introduction, run_facts
    from nrp.purifiers.shipped import SHIPPED_TRAINING
    facts = dict(run_facts(DEMO_LIKE, as_rows_of(ROWS)))
    assert facts["Photos"] == "20 photos from photos, labels labels.csv, resized and centre-cropped to 224x224"
    assert facts["Budget"].startswith("eps 16/255 (L-inf")
    assert "lite2 (black-box: no attack was crafted on it)" in facts["Scored by"]
    assert "lite0 (white-box for lite0, lite0+lite1, SSP's feature extractor)" in facts["Scored by"]
    assert "lite0+lite1 (ensemble: averaged logits)" in facts["Crafted on (white-box)"]
    assert "SSP (ssp, label-free, on lite0:_blocks.4 features)" in facts["Attacks"]
    assert SHIPPED_TRAINING in facts["Purifier"] and "Mine: mine.pth (the file does not record" in facts["Purifier"]
    text = introduction(DEMO_LIKE, as_rows_of(ROWS))
    assert "one photo is 5 points" in text and "lite2 never saw an attack: its columns measure transfer" in text
    several = {**DEMO_LIKE, "targets": [*DEMO_LIKE["targets"], "squeezenet"]}
    assert "squeezenet never saw an attack: their columns measure transfer to unseen" in introduction(several, as_rows_of(ROWS))


def test_the_header_counts_the_cross_task_sections_attacks_as_crafted_on_their_networks():
    from nrp.eval.reports.header import introduction, run_facts
    config = {"images": "photos", "image_size": 320, "eps": [16], "targets": ["yolo", "u2net", "other"], "attacks": [],
              "cross_task": {"attacks": [{"name": "ssp", "backbone": "mobilenet_v2", "layer": "features.6"},
                                         {"name": "ssp", "backbone": "yolo", "layer": "outputs"}]}}
    facts = dict(run_facts(config, []))
    assert "yolo (white-box for SSP's feature extractor)" in facts["Scored by"]
    assert "u2net (black-box: no attack was crafted on it)" in facts["Scored by"]
    text = introduction(config, [])
    assert "yolo never saw" not in text and "u2net, other never saw an attack" in text


def as_rows_of(records):
    from nrp.eval.reports import as_rows
    return as_rows(records)


def test_pages_open_with_what_ran_show_examples_early_and_caption_every_figure(tmp_path: Path) -> None:
    from nrp.eval.reports.html import Figure
    grid = image_grid([[torch.rand(3, 8, 8)]], [["cat ✓"]], tmp_path / "g.png")
    written = write_report(tmp_path / "report", ROWS, [], DEMO_LIKE, 0, [Figure(grid, "Rows: the rule.")], CURVES)
    source = written["html"].read_text(encoding="utf-8")
    headings = [line[4:-5] for line in source.splitlines() if line.startswith("<h2>")]
    assert headings[:3] == ["What ran", "Attack success rate", "Examples"]
    assert "<dt>Scored by</dt>" in source and "<figcaption>Rows: the rule.</figcaption>" in source
    figures = source.count("<figure>")
    assert figures == source.count("<figcaption>") == 1 + (3 if HAS_MATPLOTLIB else 0)
    markdown = written["report_markdown"].read_text(encoding="utf-8")
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == headings
    assert "- **Scored by**: lite2 (black-box" in markdown and "*Rows: the rule.*" in markdown
    assert EXPECTED_SUCCESS.split("\n", 2)[2].split("\n\n")[0] in markdown  # the same tables
    for target in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
        assert (written["report_markdown"].parent / urllib.parse.unquote(target)).is_file()


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_titles_name_defense_source_target_and_photos(tmp_path: Path) -> None:
    from nrp.eval.reports.report import curve_captions
    captions = curve_captions(DEMO_LIKE, 20)
    title, caption = captions["plot_accuracy_vs_iterations"]
    assert title == "Figure 6: lite2 behind NRP-Lite; attacks crafted on lite0 (SSP on lite0:_blocks.4), eps 16/255, 10 photos"
    assert caption.startswith("Top-1 accuracy of lite2 behind NRP-Lite on the 10 photos")
    assert "agreement, not accuracy" in curve_captions(DEMO_LIKE, 20, labelled=False)["plot_accuracy_vs_iterations"][1]
    assert captions["plot_accuracy_vs_eps"][0] == "lite2: top-1 accuracy against eps (20 photos)"


def test_fooling_rate_tables_say_their_clean_column_is_accuracy() -> None:
    fooling = classification_tables(ROWS, "fooling_rate")[0]
    assert fooling.header[2] == "clean top-1"
    assert classification_tables(ROWS, "top1")[0].header[2] == "clean"
