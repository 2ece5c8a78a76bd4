"""A temporal method through the shared loop: windows by index, train flip, whole-run evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lifting import train
from lifting.codec import Codec
from lifting.data.split import Protocol, load_split
from lifting.data.sequences import SequenceIndex
from lifting.models import videopose3d
from lifting.runner import RunSettings, load_method, train_method

SMALL = videopose3d.Config(filter_widths=(3, 3), channels=32, dropout=0.0)
SETTINGS = RunSettings(seeds=(0,), threads=1, max_epochs=10, batch_size=64, train_stride=4, lr_scale=3.0,
                       decay="cosine", warmup=0.0, bf16_cpu=False, curve_points=0, curve_test_stride=20,
                       val_fraction=0.1, checkpoint="last")


@pytest.fixture(scope="module")
def data(aligned_s1_s9):
    return load_split(aligned_s1_s9, "gt", "h36m17", Protocol())


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("vp3d")
    record = train_method("videopose3d", SMALL, "gt", data, SETTINGS, out, out / "log.csv", snapshot={}, progress=False)
    return record, out


def test_a_temporal_run_trains_on_every_nth_frame_and_improves(data, trained):
    record, out = trained
    assert record.train_samples == int((data.train_meta["frame"] % SETTINGS.train_stride == 0).sum())
    curve = [float(line.split(",")[6]) for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert curve[-1] < 0.8 * curve[0]  # test P1 (logged only) falls over the ten epochs


def test_whole_run_evaluation_equals_the_windows_and_needs_the_runs(data, trained):
    _, out = trained
    saved, (predictor,) = load_method(out / "model.pt")
    rows = np.arange(0, len(data.test_inputs), 37)
    model = videopose3d.build(SMALL, 17)
    model.load_state_dict(saved.state_dicts[0])
    codec = Codec(videopose3d.INPUT_SPEC, **{k: v.numpy() for k, v in saved.stats.items()})
    windows = SequenceIndex.from_meta(data.test_meta).window_rows(rows, model.receptive_field)
    expected = train.predict(model, codec, torch.as_tensor(data.test_inputs), flip_test=True,
                             windows=torch.as_tensor(windows)).numpy()
    whole = predictor(data.test_inputs, data.test_meta)
    assert np.allclose(whole[rows], expected, atol=1e-3)  # mm
    with pytest.raises(ValueError, match="pass the rows' meta"):
        predictor(data.test_inputs)


def test_train_flip_mirrors_2d_and_3d_together():
    codec = Codec(videopose3d.INPUT_SPEC, np.zeros((17, 2)), np.ones((17, 2)), np.zeros((17, 3)), np.ones((17, 3)))
    window = torch.randn(2, 5, 17, 2)
    pose = torch.randn(2, 17, 3)
    mirrored = codec.mirror_inputs(window)
    assert torch.equal(mirrored[:, :, 1, 0], -window[:, :, 4, 0]) and torch.equal(mirrored[:, :, 1, 1], window[:, :, 4, 1])
    assert torch.equal(codec.mirror_outputs(codec.mirror_outputs(pose)), pose)


def test_rie_stages_chain_through_their_checkpoints(data, tmp_path):
    from lifting.errors import DataError
    from lifting.models import rie

    settings = RunSettings(**{**SETTINGS.__dict__, "max_epochs": 1, "train_stride": 8})
    small = {"latent": 8, "channels": 8, "filter_widths": (3, 3), "fc_hidden": 16}
    outs, records = {}, {}
    for stage in (1, 2, 3):
        out = tmp_path / f"stage{stage}"
        init = outs[stage - 1] / "model.pt" if stage > 1 else None
        records[stage] = train_method("rie", rie.Config(**small, stage=stage), "gt", data, settings, out,
                                      out / "log.csv", snapshot={}, progress=False, init=init,
                                      name=f"rie_stage{stage}" if stage < 3 else "rie")
        outs[stage] = out
        assert records[stage].schedule["lr"] == \
            (rie.STAGE3_LR if stage == 3 else rie.PAPER_SCHEDULE.lr) * settings.lr_scale
    # the last stage's record holds the chain: each stage's epochs, samples, time and last curve P1
    chain = records[3].stages
    assert list(chain) == ["rie_stage1", "rie_stage2", "rie"] and records[1].stages is None
    for stage, name in zip((1, 2, 3), chain):
        assert chain[name] == {key: getattr(records[stage], key) for key in ("epochs", "samples_seen",
                                                                             "train_seconds", "curve_p1")}
        assert chain[name]["curve_p1"] > 0
    stage2 = torch.load(outs[2] / "model.pt", weights_only=True)
    assert stage2["parameters"] == sum(p.numel() for p in rie.RIE(rie.Config(**small, stage=2)).parameters())
    saved = {k: torch.load(v / "model.pt", weights_only=True)["state_dicts"][0] for k, v in outs.items()}
    encoders = [name for name in saved[1] if name.startswith(("local.", "global_encoder.")) and "running" not in name
                and "num_batches" not in name]
    assert encoders and all(torch.equal(saved[2][name], saved[1][name]) for name in encoders)  # frozen in stage 2
    assert not all(torch.equal(saved[3][name], saved[2][name]) for name in encoders)  # fine-tuned in stage 3
    with pytest.raises(ValueError, match="starts from the previous stage"):
        train_method("rie", rie.Config(**small, stage=2), "gt", data, settings, tmp_path / "x", tmp_path / "x.csv",
                     snapshot={}, progress=False)
    with pytest.raises(DataError, match="not rie stage 1's model"):
        train_method("rie", rie.Config(**small, stage=2), "gt", data, settings, tmp_path / "y", tmp_path / "y.csv",
                     snapshot={}, progress=False, init=outs[2] / "model.pt")


def test_velocity_error_is_scored_where_the_test_rows_are_whole_runs(data):
    from lifting.evaluation import run_ids, score_seeds

    ids = run_ids(data.test_meta)
    assert ids is not None and len(np.unique(ids)) == data.test_meta.groupby(["sequence", "camera"]).ngroups
    assert run_ids(data.test_meta[data.test_meta["frame"] % 50 == 0]) is None
    jitter = data.test_targets + np.random.default_rng(0).normal(scale=5.0, size=data.test_targets.shape)
    scores, seeds = score_seeds([data.test_targets.copy(), jitter], data, [0, 1])
    # exact predictions have no velocity error. 5 mm of white noise per coordinate, root-aligned
    # (each joint minus the root: std 5 sqrt(2)), differenced over a frame (std 10 per coordinate):
    # E|N(0, 100 I3)| = 10 * 1.596 mm on the 16 joints besides the root, 0 on the root: 15.0 mm
    assert seeds["per_seed"]["mpjve"][0] == 0.0 and 14.6 < seeds["per_seed"]["mpjve"][1] < 15.4
    assert "mpjve_mm_per_frame" in scores
