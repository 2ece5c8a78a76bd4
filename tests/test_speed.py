"""lifting/speed.py: timing leaves a metrics file for its sibling, and comes back whole."""

import json

from lifting.speed import read_metrics, split_speed, write_metrics

RECORD = {"method": "semgcn", "metrics": {"mpjpe_mm": {"action_mean": 78.24}},
          "training": {"seconds": 151.2, "samples_per_s": 1066.0, "core_seconds": 302.4, "epochs": 3,
                       "schedule": {"lr": 0.001, "epochs": 3}},
          "inference_samples_per_s": 7463.6, "parameters": 270000}


def test_only_machine_figures_leave_the_metrics_file_and_they_come_back_whole(tmp_path):
    kept, speed = split_speed(RECORD)
    assert speed == {"training": {"seconds": 151.2, "samples_per_s": 1066.0, "core_seconds": 302.4},
                     "inference_samples_per_s": 7463.6}
    assert kept["training"] == {"epochs": 3, "schedule": {"lr": 0.001, "epochs": 3}}
    assert kept["metrics"] == RECORD["metrics"] and kept["parameters"] == 270000
    write_metrics(RECORD, tmp_path / "semgcn-gt.json")
    assert json.loads((tmp_path / "semgcn-gt.json").read_text()) == kept
    assert json.loads((tmp_path / "speed" / "semgcn-gt.json").read_text()) == speed
    assert read_metrics(tmp_path / "semgcn-gt.json") == RECORD


def test_a_metrics_file_without_a_sibling_reads_as_it_is(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps(RECORD))
    assert read_metrics(tmp_path / "old.json") == RECORD
