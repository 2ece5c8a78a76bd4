"""HRNet: upstream's exact state-dict layout, strict checkpoint loading, CA-PF's feature maps."""

import gzip
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lifting.errors import DataError
from lifting.models.hrnet import PAPER_CONFIGS, HRNet, HRNetConfig, load_checkpoint

DATA = Path(__file__).parent / "data"
TINY = HRNetConfig(stem_width=32, layer1_blocks=1, width=16, stage_modules=(1, 1, 1), blocks=1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Single-threaded, as in test_gridconv.py: on the busy 2-core machine the W32 forward took
    10 s with two threads (OpenMP barriers waiting for descheduled threads) and 0.4 s with one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def on_meta(config: HRNetConfig) -> HRNet:
    """The model with shapes only (no memory, no initialisation): enough for names and counts."""
    with torch.device("meta"):
        return HRNet(config)


def layout(state_dict) -> list[str]:
    return [f"{k}\t{','.join(map(str, v.shape))}" for k, v in state_dict.items()]


@pytest.mark.parametrize("name", ["w32", "w48"])
def test_state_dict_is_upstreams_key_for_key(name):
    """Keys, shapes and order equal the official model's, so its checkpoints load strictly.

    ``data/hrnet_{w32,w48}_state_dict.txt.gz`` (gzip text, one ``name<TAB>comma-separated shape``
    line per state-dict entry, in order) was generated outside the repository from
    leoxiaobin/deep-high-resolution-net.pytorch at commit 6f69e4676ad8d43d0d61b64b1b9726f0c369e7b1:
    ``PoseHighResolutionNet(yaml.safe_load(open(yml)))`` from ``lib/models/pose_hrnet.py`` with
    ``experiments/coco/hrnet/w{32,48}_256x192_adam_lr1e-3.yaml`` (plain dicts stand in for the
    yacs config), then ``state_dict()`` written as above. No upstream code or weights are committed.
    """
    expected = gzip.decompress((DATA / f"hrnet_{name}_state_dict.txt.gz").read_bytes()).decode().splitlines()
    assert layout(on_meta(PAPER_CONFIGS[name]).state_dict()) == expected


@pytest.mark.parametrize("name, expected", [("w32", 28_536_113), ("w48", 63_595_745)])
def test_parameter_counts_are_the_papers(name, expected):
    """The paper's 28.5M (W32) and 63.6M (W48) for COCO 256x192."""
    assert sum(p.numel() for p in on_meta(PAPER_CONFIGS[name]).parameters()) == expected


def test_small_configs_follow_the_same_naming():
    keys = HRNet(TINY).state_dict().keys()
    for key in ("conv1.weight", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.num_batches_tracked",
                "transition1.0.0.weight", "transition1.1.0.0.weight", "transition2.2.0.0.weight",
                "transition3.3.0.1.running_var", "stage2.0.branches.0.0.conv1.weight",
                "stage2.0.fuse_layers.0.1.0.weight", "stage2.0.fuse_layers.1.0.0.1.running_mean",
                "stage3.0.fuse_layers.2.0.1.0.weight", "stage4.0.fuse_layers.0.3.1.weight", "final_layer.bias"):
        assert key in keys, key
    assert not any(k.startswith(("stage4.0.fuse_layers.1", "transition2.0", "transition2.1")) for k in keys)
    assert HRNet(TINY).state_dict()["stage4.0.branches.3.0.conv2.weight"].shape == (128, 128, 3, 3)


def randomised(config: HRNetConfig) -> HRNet:
    """A model with non-trivial weights and statistics, so that outputs tell paths apart."""
    torch.manual_seed(0)
    model = HRNet(config)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.dtype.is_floating_point:
                value.copy_(torch.rand_like(value) * 0.5 + 0.5 if value.dim() == 1 else torch.randn_like(value) * 0.2)
    return model.eval()


@pytest.fixture
def tiny_model():
    return randomised(TINY)


@pytest.mark.parametrize("stage4_modules", [1, 2])
def test_features_are_the_maps_ca_poseformer_samples(stage4_modules):
    """f0 feeds final_layer; f1..f3 are the first stage-4 module's branch outputs before fusion.

    With two stage-4 modules the first one fuses all four branches, so its fused outputs exist
    and differ from the features.
    """
    m = randomised(replace(TINY, stage_modules=(1, 1, stage4_modules)))
    images = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        heatmaps, feats = m.features(images)
        assert [tuple(f.shape) for f in feats] == [(2, 16, 16, 12), (2, 32, 8, 6), (2, 64, 4, 3), (2, 128, 2, 2)]
        assert heatmaps.shape == (2, 17, 16, 12)
        assert torch.equal(heatmaps, m.final_layer(feats[0]))
        assert torch.equal(heatmaps, m(images))

        # A manual run up to stage 4, then the first stage-4 module's branches and fusion.
        x = m.layer1(F.relu(m.bn2(m.conv2(F.relu(m.bn1(m.conv1(images)))))))
        ys = m.stage2[0]([m.transition1[0](x), m.transition1[1](x)])
        ys = m.stage3[0]([ys[0], ys[1], m.transition2[2](ys[1])])
        xs = [ys[0], ys[1], ys[2], m.transition3[3](ys[2])]
        branched = [m.stage4[0].branches[i](xs[i]) for i in range(4)]
        fused = m.stage4[0](xs)
        assert len(fused) == (1 if stage4_modules == 1 else 4)
        for i in (1, 2, 3):
            assert torch.equal(feats[i], branched[i])
            if stage4_modules == 2:
                assert fused[i].shape == feats[i].shape and not torch.allclose(fused[i], feats[i])
        final = fused if stage4_modules == 1 else m.stage4[1](fused)
        assert torch.equal(final[0], feats[0])
        assert torch.equal(xs[1], ys[1])  # the module left its input list alone


def test_fusion_upsampling_equals_scale_factor_nearest_for_even_sizes():
    x = torch.randn(1, 2, 4, 3)
    assert torch.equal(F.interpolate(x, size=(16, 12), mode="nearest"),
                       F.interpolate(x, scale_factor=4, mode="nearest"))


def save(obj, path):
    torch.save(obj, path)
    return path


def test_checkpoint_round_trip_with_module_prefix_and_state_dict_nesting(tiny_model, tmp_path):
    state = {f"module.{k}": v for k, v in tiny_model.state_dict().items()}
    path = save({"state_dict": state, "epoch": 3}, tmp_path / "tiny.pth")
    loaded = load_checkpoint(path, TINY)
    images = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(loaded(images), tiny_model(images))
    assert not loaded.training


def test_missing_num_batches_tracked_is_tolerated(tiny_model, tmp_path):
    """Checkpoints from old PyTorch versions have no BatchNorm counters."""
    state = {k: v for k, v in tiny_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_checkpoint(save(state, tmp_path / "old.pth"), TINY)


def one_error(path, config=TINY) -> DataError:
    with pytest.raises(DataError) as info:
        load_checkpoint(path, config)
    assert info.value.path == Path(path)
    assert str(path) in str(info.value) and "pose_hrnet_w32_256x192.pth" in info.value.fix
    return info.value


def test_bad_checkpoints_raise_one_data_error_naming_the_file(tiny_model, tmp_path):
    one_error(tmp_path / "absent.pth")

    good = save(tiny_model.state_dict(), tmp_path / "good.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    one_error(truncated)

    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    one_error(text)

    state = tiny_model.state_dict()
    state["final_layer.weight"] = torch.zeros(17, 8, 1, 1)
    err = one_error(save(state, tmp_path / "shape.pth"))
    assert "final_layer.weight (17, 8, 1, 1)" in err.problem and "(17, 16, 1, 1)" in err.problem

    state = tiny_model.state_dict()
    del state["stage3.0.fuse_layers.2.0.1.0.weight"]
    assert "missing keys: stage3.0.fuse_layers.2.0.1.0.weight" in one_error(save(state, tmp_path / "missing.pth")).problem

    err = one_error(good, PAPER_CONFIGS["w32"])  # the tiny file for the W32 config
    assert "wrong shapes: conv1.weight" in err.problem and "missing keys" in err.problem

    state = dict(tiny_model.state_dict(), extra=torch.zeros(1))
    assert "unexpected keys: extra" in one_error(save(state, tmp_path / "extra.pth")).problem

    one_error(save({"weights": [1, 2, 3]}, tmp_path / "list.pth"))


class Payload:
    """Any class: unpickling it would run code of the pickle's choosing."""


def test_arbitrary_pickles_are_refused(tmp_path):
    err = one_error(save({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": Payload()}, tmp_path / "pickle.pth"))
    assert "weights-only" in err.problem


def test_paper_w32_forward_shape():
    with torch.no_grad():
        assert HRNet(PAPER_CONFIGS["w32"]).eval()(torch.randn(1, 3, 256, 192)).shape == (1, 17, 64, 48)
