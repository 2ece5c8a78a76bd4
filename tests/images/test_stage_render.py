"""stages/render.py: its settings, its refusal to render Human3.6M, and its skipped output."""

import pytest
import yaml

from lifting.config import ParamsError
from lifting.errors import DataError
from stages import render as stage


def test_settings_read_the_crop_size_and_whether_images_are_needed():
    params = {"data": {"source": "embedded", "inputs2d": ["gt", "noisy"], "h36m_videos": None}, "render": {"width": 96, "height": 128, "body": "person", "outfits": "subject"}}
    data, size, needed = stage.settings(params, None)
    assert size == stage.RenderParams(96, 128, "person", "subject") and not needed
    assert stage.settings({**params, "runs": {"context_poseformer": ["gt"]}}, None)[2]
    assert stage.settings({**params, "data": {"source": "embedded", "inputs2d": ["detected"], "h36m_videos": None}}, None)[2]
    with pytest.raises(ParamsError, match="widht"):
        stage.settings({**params, "render": {"widht": 96, "height": 64, "body": "person", "outfits": "subject"}}, None)


def test_h36m_source_is_refused_with_the_fix(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"source": "h36m", "inputs2d": ["gt", "detected"], "h36m_videos": None},
                                      "render": {"width": 48, "height": 64, "body": "person", "outfits": "subject"}}))
    with pytest.raises(DataError, match="your own copy of the videos.*h36m_videos"):
        stage.main(["--params", str(params), "--out", str(tmp_path / "images")])
    assert not (tmp_path / "images").exists()


def test_nothing_to_render_writes_an_empty_folder(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"source": "embedded", "inputs2d": ["gt"], "h36m_videos": None},
                                      "render": {"width": 48, "height": 64, "body": "person", "outfits": "subject"}}))
    stage.main(["--params", str(params), "--out", str(tmp_path / "images")])
    assert [p.name for p in (tmp_path / "images").iterdir()] == ["summary.json"]


def test_the_detector_stages_skip_with_their_outputs_when_no_image_is_needed(tmp_path):
    """DVC needs every declared output: a skipped train_detector still writes its (empty) curve,
    detect2d its metrics file."""
    from stages import detect2d, train_detector

    params = tmp_path / "params.yaml"
    full = yaml.safe_load(open("params.yaml"))
    full["data"]["inputs2d"] = ["gt"]
    params.write_text(yaml.safe_dump(full))
    train_detector.main(["--params", str(params), "--out", str(tmp_path / "detector"), "--log", str(tmp_path / "d.csv")])
    assert (tmp_path / "d.csv").read_text().startswith("epoch,step") and (tmp_path / "detector/summary.json").exists()
    detect2d.main(["--params", str(params), "--out", str(tmp_path / "detected"), "--metrics", str(tmp_path / "m.json")])
    assert "skipped" in (tmp_path / "m.json").read_text() and (tmp_path / "detected/summary.json").exists()
