"""Human3.6M's crops cut from a video: decoding, the crop's geometry, missing and short videos."""

import av
import numpy as np
import pandas as pd
import pytest

from lifting.data.schema import poses_to_frame
from lifting.errors import DataError
from lifting.geometry import Camera
from lifting.images import video
from lifting.images.crop import crop_boxes, to_crop
from lifting.skeleton import H36M17

CAMERA = Camera(id="54138969", width=160, height=128, focal=(100.0, 100.0), center=(80.0, 64.0),
                radial=(0.0, 0.0, 0.0), tangential=(0.0, 0.0), orientation=(1.0, 0.0, 0.0, 0.0),
                translation=(0.0, 0.0, 0.0))


def square_at(points_px: np.ndarray) -> np.ndarray:
    """(T, 2) pixel positions -> (T, 128, 160, 3) frames: grey, with a white 8x8 square at each."""
    frames = np.full((len(points_px), 128, 160, 3), 60, np.uint8)
    for frame, (x, y) in zip(frames, points_px.astype(int)):
        frame[y - 4:y + 4, x - 4:x + 4] = 255
    return frames


def write_video(path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=50)
        stream.width, stream.height, stream.pix_fmt = 160, 128, "yuv420p"
        stream.options = {"qscale": "2"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_the_crop_finds_what_the_root_projects_onto(tmp_path):
    """A root walking across the image: the white square drawn at its projection appears at the
    projection's crop position in every crop."""
    count = 6
    root = np.stack([np.linspace(-600, 600, count), np.linspace(-200, 200, count), np.full(count, 4000.0)], -1)
    pixels = CAMERA.project(root)
    world = np.repeat(root[:, None], 17, axis=1)  # identity camera: world = camera frame
    poses3d = pd.concat([pd.DataFrame({"subject": "S1", "action": "Walking", "sequence": "Walking 1",
                                       "frame": np.arange(count)}), poses_to_frame(world, H36M17, "xyz")], axis=1)
    write_video(video.video_path(tmp_path, "S1", "Walking 1", CAMERA.id), square_at(pixels))
    (view,) = video.h36m_views(tmp_path, poses3d, {("S1", CAMERA.id): CAMERA}, width=48, height=64)
    assert view.images.shape == (count, 64, 48, 3) and view.frames.tolist() == list(range(count))
    centres, sizes = crop_boxes(root, CAMERA, 48, 64)
    expected = to_crop(pixels[:, None], centres, sizes, 48, 64)[:, 0]
    for image, where in zip(view.images, expected):
        ys, xs = np.nonzero(image.mean(-1) > 160)
        assert abs(xs.mean() + 0.5 - where[0]) < 1.0 and abs(ys.mean() + 0.5 - where[1]) < 1.0


def test_crops_are_black_outside_the_image():
    frames = np.full((1, 128, 160, 3), 200, np.uint8)
    crops = video.crop_frames(frames, np.array([[0.0, 0.0]]), np.array([[96.0, 128.0]]), 48, 64)
    assert crops[0, :28, :20].max() == 0 and crops[0, 40:, 30:].min() == 200


def test_a_missing_or_short_video_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="Walking 1.54138969.mp4: video not found.*h36m_videos"):
        video.decode_frames(video.video_path(tmp_path, "S1", "Walking 1", CAMERA.id), 3)
    path = tmp_path / "short.mp4"
    write_video(path, square_at(np.full((2, 2), 50.0)))
    with pytest.raises(DataError, match="2 frames, but its sequence has 5 poses"):
        video.decode_frames(path, 5)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError, match="junk.mp4: not a readable video"):
        video.decode_frames(tmp_path / "junk.mp4", 1)
