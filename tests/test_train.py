"""The shared training loop: schedules, codec, determinism, resuming, and that it learns."""

import csv
import logging
import dataclasses

import numpy as np
import pytest
import torch

from lifting import train
from lifting.codec import Codec
from lifting.models import simple_baseline
from lifting.models.base import pose_loss
from lifting.models.spec import InputSpec, Schedule

SCHEDULE = Schedule(optimizer="adam", lr=3e-3, lr_decay=0.5, lr_decay_every=2, lr_decay_unit="epoch",
                    batch_size=32, epochs=4, loss="mse", grad_clip=1.0)


def synthetic_arrays(n=256, seed=0):
    """A learnable toy problem: 3D = a fixed linear function of the 2D, root at 0."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(scale=0.3, size=(n, 17, 2)).astype(np.float32)
    mixing = rng.normal(size=(34, 51)).astype(np.float32)
    targets = (inputs.reshape(n, -1) @ mixing).reshape(n, 17, 3) * 100.0
    targets -= targets[:, :1]
    return inputs, targets


def make_setup(init_seed=0):
    inputs, targets = synthetic_arrays()
    spec = InputSpec(joint_set="h36m17", input_norm="zscore", target="zscore")
    codec = Codec(spec, inputs.mean(0), inputs.std(0), targets.mean(0), targets.std(0))
    arrays = train.TrainArrays(*(torch.as_tensor(a) for a in (inputs[:200], targets[:200], inputs[200:], targets[200:])))
    torch.manual_seed(init_seed)
    model = simple_baseline.build(simple_baseline.Config(hidden=64, dropout=0.1), 17)
    return model, codec, arrays


def fit(tmp_path, model, codec, arrays, schedule=SCHEDULE, name="run"):
    return train.fit(model, codec, arrays, schedule, seed=7, checkpoint_path=tmp_path / f"{name}.pt",
                     log_path=tmp_path / f"{name}.csv", snapshot={"run": name}, progress=False)


def test_learning_rate_steps_down_by_epoch_and_by_step():
    assert train.learning_rate(SCHEDULE, step=999, epoch=0) == pytest.approx(3e-3)
    assert train.learning_rate(SCHEDULE, step=0, epoch=2) == pytest.approx(1.5e-3)
    assert train.learning_rate(SCHEDULE, step=0, epoch=5) == pytest.approx(0.75e-3)
    by_step = dataclasses.replace(SCHEDULE, lr_decay=0.96, lr_decay_every=100_000, lr_decay_unit="step")
    assert train.learning_rate(by_step, step=250_000, epoch=0) == pytest.approx(3e-3 * 0.96**2)
    early = dataclasses.replace(SCHEDULE, lr_decay_first=1)
    assert [train.learning_rate(early, step=0, epoch=e) for e in (0, 1, 2, 3, 4)] == pytest.approx(
        [3e-3, 1.5e-3, 1.5e-3, 0.75e-3, 0.75e-3])


def test_cosine_schedule_runs_from_lr_to_zero():
    cosine = dataclasses.replace(SCHEDULE, lr_decay_unit="cosine")
    assert train.learning_rate(cosine, step=0, epoch=0, total_steps=100) == pytest.approx(3e-3)
    assert train.learning_rate(cosine, step=50, epoch=0, total_steps=100) == pytest.approx(1.5e-3)
    assert train.learning_rate(cosine, step=100, epoch=3, total_steps=100) == pytest.approx(0.0)


def test_budget_caps_epochs_and_null_restores_the_paper():
    paper = simple_baseline.PAPER_SCHEDULE
    budgeted = train.budgeted_schedule(paper, max_epochs=5, batch_size=256)
    assert (budgeted.epochs, budgeted.batch_size, budgeted.lr) == (5, 256, paper.lr)
    assert train.budgeted_schedule(paper, max_epochs=None, batch_size=256, lr_scale=3.0, decay="cosine") == paper
    fast = train.budgeted_schedule(paper, max_epochs=5, batch_size=None, lr_scale=3.0, decay="linear", warmup=0.1)
    assert (fast.batch_size, fast.lr, fast.lr_decay_unit, fast.optimizer, fast.warmup) == (
        paper.batch_size, 3 * paper.lr, "linear", "adam", 0.1)


def test_warm_up_then_decay_to_zero():
    for decay in ("cosine", "linear"):
        schedule = dataclasses.replace(SCHEDULE, lr_decay_unit=decay, warmup=0.1)
        lrs = [train.learning_rate(schedule, step=s, epoch=0, total_steps=110) for s in range(110)]
        assert lrs[:11] == pytest.approx([3e-3 * (s + 1) / 11 for s in range(11)])  # 10 % of 110 steps
        assert lrs[11 + 49] == pytest.approx(3e-3 * (0.5 * (1 + np.cos(np.pi * 49 / 99)) if decay == "cosine" else 1 - 49 / 99))
        assert train.learning_rate(schedule, step=110, epoch=3, total_steps=110) == pytest.approx(0.0)
        assert max(lrs) == pytest.approx(3e-3)


def test_a_budgeted_run_reports_progress_on_the_papers_clock(tmp_path):
    model, codec, arrays = make_setup()
    seen = []
    model.set_epoch_progress = seen.append
    paper = dataclasses.replace(SCHEDULE, epochs=40)
    fit(tmp_path, model, codec, arrays, schedule=train.budgeted_schedule(paper, max_epochs=4, batch_size=None))
    steps_per_epoch = 200 // SCHEDULE.batch_size + 1  # 7 batches of 32 for 200 samples
    assert len(seen) == 4 * steps_per_epoch
    # 4 of the paper's 40 epochs: each real epoch is 10 of the paper's.
    assert seen[0] == 0.0 and seen[steps_per_epoch] == pytest.approx(10.0)
    assert seen[-1] == pytest.approx(10.0 * (4 - 1 / steps_per_epoch))
    seen.clear()
    fit(tmp_path, model, codec, arrays, name="paper")  # the paper's schedule: real epochs
    assert seen[steps_per_epoch] == pytest.approx(1.0)


@pytest.mark.parametrize("pairs", [True, False])
def test_an_upstream_temporal_epoch_holds_every_sample_plain_and_mirrored(tmp_path, pairs):
    """VideoPose3D's generator (and RIE's): each epoch sees every sample twice, once mirrored;
    without ``mirrored_pairs`` an epoch is one pass with a random half mirrored."""
    inputs, targets = synthetic_arrays(n=40)
    spec = InputSpec(joint_set="h36m17", input_norm="zscore", target="zscore", train_flip=True)
    codec = Codec(spec, np.zeros((17, 2)), np.ones((17, 2)), np.zeros((17, 3)), np.ones((17, 3)))
    arrays = train.TrainArrays(torch.as_tensor(inputs), torch.as_tensor(targets), torch.zeros(0, 17, 2),
                               torch.zeros(0, 17, 3))
    model = simple_baseline.build(simple_baseline.Config(hidden=16, dropout=0.0), 17)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()) if module.training
                                    else None)
    schedule = dataclasses.replace(SCHEDULE, epochs=1, batch_size=16, mirrored_pairs=pairs)
    result = fit(tmp_path, model, codec, arrays, schedule=schedule)
    rows = torch.cat(seen).flatten(1).double()
    plain = codec.encode_inputs(torch.as_tensor(inputs)).flatten(1).double()
    mirrored = codec.encode_inputs(codec.mirror_inputs(torch.as_tensor(inputs))).flatten(1).double()
    was_plain = (torch.cdist(rows, plain) < 1e-6).sum(0)
    was_mirrored = (torch.cdist(rows, mirrored) < 1e-6).sum(0)
    if pairs:
        assert len(rows) == result.samples_seen == 80 and result.steps == 5
        assert was_plain.tolist() == [1] * 40 and was_mirrored.tolist() == [1] * 40
    else:
        assert len(rows) == result.samples_seen == 40
        assert (was_plain + was_mirrored).tolist() == [1] * 40 and 0 < int(was_mirrored.sum()) < 40


def test_training_lowers_the_validation_error_and_logs_each_epoch(tmp_path):
    model, codec, arrays = make_setup()
    before = train.mean_joint_error_mm(train.predict(model, codec, arrays.val_inputs), arrays.val_targets)
    result = fit(tmp_path, model, codec, arrays)
    after = train.mean_joint_error_mm(train.predict(model, codec, arrays.val_inputs), arrays.val_targets)
    assert after < 0.7 * before
    rows = list(csv.DictReader(open(tmp_path / "run.csv")))
    assert [float(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["samples_seen"]) for r in rows] == [200, 400, 600, 800]
    assert float(rows[-1]["val_mpjpe_mm"]) == pytest.approx(after, abs=0.01)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[2]["lr"]) == pytest.approx(1.5e-3)
    assert result.epochs_run == 4 and result.selected_epoch == 4


def test_curve_points_call_the_monitor_between_epochs_and_never_select(tmp_path):
    model, codec, arrays = make_setup()
    calls = []

    def monitor(m):
        calls.append(m.training)
        return {"test_p1_mm": 1000.0 - len(calls)}  # improves every call: must not change the selection

    result = train.fit(model, codec, arrays, SCHEDULE, seed=7, checkpoint_path=tmp_path / "c.pt",
                       log_path=tmp_path / "c.csv", snapshot={}, progress=False, monitor=monitor, curve_points=8)
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(train.evaluation_steps(28, 7, 8)) and len(calls) == len(rows) == 8
    assert [float(r["test_p1_mm"]) for r in rows] == [999.0 - i for i in range(8)]
    assert calls == [False] * 8  # scored in eval mode; training resumes in train mode
    assert result.selected_epoch == 4 and result.samples_seen == 800
    assert float(rows[-1]["core_seconds"]) == pytest.approx(result.core_seconds, abs=0.1)


def test_evaluation_steps_cover_every_epoch_end_and_the_requested_points():
    assert train.evaluation_steps(total_steps=30, steps_per_epoch=10, curve_points=0) == {10, 20, 30}
    assert train.evaluation_steps(total_steps=30, steps_per_epoch=10, curve_points=6) == {5, 10, 15, 20, 25, 30}
    assert train.evaluation_steps(total_steps=30, steps_per_epoch=10, curve_points=4) == {8, 10, 15, 20, 22, 30}


def test_same_seed_same_weights(tmp_path):
    states = []
    for name in ("a", "b"):
        model, codec, arrays = make_setup()
        states.append(fit(tmp_path, model, codec, arrays, name=name).state_dict)
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, caplog):
    model, codec, arrays = make_setup()
    reference = fit(tmp_path, model, codec, arrays, name="reference").state_dict

    model, codec, arrays = make_setup()

    def interrupt(progress):
        if progress >= 2.5:
            raise Interrupted

    model.set_epoch_progress = interrupt
    with pytest.raises(Interrupted):
        fit(tmp_path, model, codec, arrays, name="resumed")
    checkpoint = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert checkpoint["epoch"] == 1  # epochs 0 and 1 completed

    model, codec, arrays = make_setup(init_seed=123)  # different initial weights: all state must come from the checkpoint
    with caplog.at_level(logging.INFO, logger="lifting.train"):
        resumed = fit(tmp_path, model, codec, arrays, name="resumed").state_dict
    assert "resumed.pt: resuming after epoch 2 of 4" in caplog.text
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key
    assert len(list(csv.DictReader(open(tmp_path / "resumed.csv")))) == 4


def test_a_checkpoint_for_other_params_is_not_resumed(tmp_path):
    model, codec, arrays = make_setup()
    fit(tmp_path, model, codec, arrays, name="run")
    checkpoint = torch.load(tmp_path / "run.pt", weights_only=True)
    assert train._load_checkpoint(tmp_path / "run.pt", {"run": "run"}) is not None
    assert train._load_checkpoint(tmp_path / "run.pt", {"run": "other"}) is None
    assert checkpoint["epoch"] == 3


def test_loss_variants():
    a, b = torch.zeros(2, 3, 3), torch.zeros(2, 3, 3)
    b[..., 0] = 3.0
    b[..., 1] = 4.0
    mse = dataclasses.replace(SCHEDULE, loss="mse")
    assert float(pose_loss(a, b, mse)) == pytest.approx(25.0 / 3)
    assert float(pose_loss(a, b, dataclasses.replace(SCHEDULE, loss="mpjpe"))) == pytest.approx(5.0)
    mixed = dataclasses.replace(SCHEDULE, loss="mpjpe", l1_weight=0.1)
    assert float(pose_loss(a, b, mixed)) == pytest.approx(0.9 * 5.0 + 0.1 * 7.0 / 3)


def test_resuming_a_finished_run_rewrites_its_log(tmp_path):
    """DVC deletes a stage's outputs (the CSV log) before re-running it; the checkpoint restores it."""
    model, codec, arrays = make_setup()
    fit(tmp_path, model, codec, arrays, name="done")
    original = (tmp_path / "done.csv").read_text()
    (tmp_path / "done.csv").unlink()
    model, codec, arrays = make_setup(init_seed=5)
    fit(tmp_path, model, codec, arrays, name="done")
    assert (tmp_path / "done.csv").read_text() == original


def test_the_temporal_papers_count_mirrored_pairs_and_a_budget_counts_passes():
    from lifting.models import rie, videopose3d

    for paper in (videopose3d.PAPER_SCHEDULE, rie.PAPER_SCHEDULE):
        assert paper.mirrored_pairs
        assert not train.budgeted_schedule(paper, max_epochs=2, batch_size=64).mirrored_pairs
        assert train.budgeted_schedule(paper, max_epochs=None, batch_size=64).mirrored_pairs
    assert not simple_baseline.PAPER_SCHEDULE.mirrored_pairs


def test_a_run_cut_by_max_steps_trains_those_steps_as_the_full_run_does(tmp_path):
    model, codec, arrays = make_setup()
    cut = train.fit(model, codec, arrays, SCHEDULE, seed=7, checkpoint_path=tmp_path / "cut.pt",
                    log_path=tmp_path / "cut.csv", snapshot={"run": "cut"}, progress=False, max_steps=9)
    # 200 samples, batch 32: 7 steps an epoch, so the cut falls in the second epoch
    assert (cut.steps, cut.samples_seen, cut.epochs_run) == (9, 200 + 2 * 32, 1)
    assert cut.samples_per_s == pytest.approx(cut.samples_seen / cut.train_seconds)
    assert torch.load(tmp_path / "cut.pt", weights_only=True)["epoch"] == 0  # the cut epoch writes no checkpoint
    # cut after the first epoch of four: the weights of the same schedule run for one epoch
    states = []
    for name, schedule, max_steps in (("cut7", SCHEDULE, 7), ("one", dataclasses.replace(SCHEDULE, epochs=1), None)):
        model, codec, arrays = make_setup()
        states.append(train.fit(model, codec, arrays, schedule, seed=7, checkpoint_path=tmp_path / f"{name}.pt",
                                log_path=tmp_path / f"{name}.csv", snapshot={"run": name}, progress=False,
                                max_steps=max_steps).state_dict)
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[1])


def test_the_optimizer_implementations_make_the_same_update():
    states = {}
    for implementation in train.OPTIMIZER_IMPLEMENTATIONS:
        model, codec, arrays = make_setup()
        model.eval()  # no dropout: the same forward for every implementation
        optimizer = train.make_optimizer(model, SCHEDULE, implementation)
        for step in range(3):
            optimizer.zero_grad()
            model.loss(codec.encode_inputs(arrays.inputs[:32]), codec.encode_targets(arrays.targets[:32]),
                       SCHEDULE).backward()
            optimizer.step()
        states[implementation] = model.state_dict()
    reference, initial = states["default"], make_setup()[0].state_dict()
    assert any(not torch.equal(reference[key], initial[key]) for key in reference)  # the steps moved the weights
    for implementation, state in states.items():
        for key, value in state.items():
            assert torch.allclose(value, reference[key], atol=1e-6), (implementation, key)
    with pytest.raises(ValueError, match="optimizer implementation 'apex'"):
        train.make_optimizer(make_setup()[0], SCHEDULE, "apex")
