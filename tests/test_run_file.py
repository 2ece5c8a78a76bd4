"""The saved run: written and read back field for field; any other layout is refused, naming the field."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lifting.errors import DataError
from lifting.run_file import FORMAT, RunFile, TrainingRecord

RECORD = TrainingRecord(train_seconds=12.5, epochs=3, selected_epoch=2, train_samples=100, samples_seen=300,
                        core_seconds=25.0, samples_per_s=24.0, schedule={"lr": 1e-3, "batch_size": 64}, seeds=[0, 1],
                        world_size=1, curve_p1=88.2, stages=None, checkpoint="last", budget={"max_epochs": 3})


def _run() -> RunFile:
    torch.manual_seed(0)
    stats = {"input_mean": torch.randn(17, 2), "input_std": torch.rand(17, 2), "target_mean": torch.randn(17, 3),
             "target_std": torch.rand(17, 3)}
    return RunFile(method="simple_baseline", name="simple_baseline", config={"hidden": 8}, kind="gt",
                   configuration="Martinez et al.", input_spec={"temporal": False}, joint_set="h36m17", stats=stats,
                   record=RECORD, parameters=123, state_dicts=[{"w": torch.randn(3, 4)}, {"w": torch.randn(3, 4)}])


def _equal(a: RunFile, b: RunFile) -> bool:
    for field in dataclasses.fields(RunFile):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "stats":
            if x.keys() != y.keys() or not all(torch.equal(x[k], y[k]) for k in x):
                return False
        elif field.name == "state_dicts":
            if len(x) != len(y) or not all(torch.equal(s["w"], t["w"]) for s, t in zip(x, y)):
                return False
        elif x != y:
            return False
    return True


def test_a_run_file_round_trips_field_for_field_and_records_its_format(tmp_path):
    run = _run()
    run.save(tmp_path / "model.pt")
    again = RunFile.load(tmp_path / "model.pt")
    assert _equal(run, again) and isinstance(again.record, TrainingRecord)
    assert torch.load(tmp_path / "model.pt", weights_only=True)["format"] == FORMAT
    assert not _equal(run, dataclasses.replace(again, parameters=124))  # the comparison can fail


def _saved(run: RunFile) -> dict:
    return {"format": FORMAT, **{f.name: getattr(run, f.name) for f in dataclasses.fields(run)},
            "record": dataclasses.asdict(run.record)}


@pytest.mark.parametrize("spoil, message", [
    (lambda s: s.pop("format"), "no format (an earlier version of the pipeline); this version reads format"),
    (lambda s: s.update(format=FORMAT + 1), f"format {FORMAT + 1}; this version reads format {FORMAT}"),
    (lambda s: s.pop("parameters"), "that lacks parameters"),
    (lambda s: s.update(extra=1), "that has unknown extra"),
    (lambda s: s["record"].pop("seeds"), "that lacks record.seeds"),
    (lambda s: s.update(method="nope"), "not a model of this pipeline (method 'nope'"),
])
def test_another_layout_is_refused_naming_the_file_and_the_field(tmp_path, spoil, message):
    saved = _saved(_run())
    spoil(saved)
    torch.save(saved, tmp_path / "model.pt")
    with pytest.raises(DataError, match="re-run the train stage") as caught:
        RunFile.load(tmp_path / "model.pt")
    assert message in str(caught.value) and "model.pt" in str(caught.value)


def test_a_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(DataError, match="trained model not found.*dvc repro"):
        RunFile.load(tmp_path / "model.pt")
