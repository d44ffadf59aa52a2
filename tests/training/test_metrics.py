import json

from nrp.training import metrics
from nrp.training.metrics import MetricsLog


class RecordingWriter:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        self.scalars.append("closed")


def test_records_are_json_lines_with_iteration_and_split(tmp_path):
    log = MetricsLog(tmp_path)
    log.write(1, "train", {"loss": 0.5})
    log.write(2, "val", {"psnr": 30})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"iteration": 1, "split": "train", "loss": 0.5},
        {"iteration": 2, "split": "val", "psnr": 30.0},
    ]


def test_a_resumed_log_drops_what_a_killed_run_wrote_after_its_checkpoint(tmp_path):
    log = MetricsLog(tmp_path)
    for iteration in range(1, 6):
        log.write(iteration, "train", {"loss": iteration})
    resumed = MetricsLog(tmp_path, resume_from=3)
    assert [record["iteration"] for record in resumed.records()] == [1, 2, 3]
    resumed.write(4, "train", {"loss": 4.5})
    assert [record["loss"] for record in resumed.records()] == [1, 2, 3, 4.5]


def test_scalars_are_mirrored_to_tensorboard_when_it_is_installed(tmp_path, monkeypatch):
    writer = RecordingWriter()
    monkeypatch.setattr(metrics, "_tensorboard_writer", lambda folder: writer)
    log = MetricsLog(tmp_path)
    log.write(7, "val", {"psnr_purified": 31.5})
    log.close()
    assert writer.scalars == [("val/psnr_purified", 31.5, 7), "closed"]
