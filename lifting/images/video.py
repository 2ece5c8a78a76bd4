"""Human3.6M's images: frames decoded from the user's own copy of the videos, cut into CA-PF crops.

Context-Aware PoseFormer's upstream extracts every frame with ffmpeg into JPEG files (about 200 GB)
and crops them on the fly. Here each video is decoded once with PyAV (the ffmpeg bindings, a pinned
dependency) and every frame is cut straight into its crop: the box around the ground-truth root of
:mod:`lifting.images.crop` (as upstream's), resampled bilinearly (``grid_sample``,
pixel-centre convention; outside the image black, like upstream's zero-padded affine crop). The
views are the same as the embedded data's renders (:class:`lifting.images.render.RenderedView`),
so the detector, ``detect2d`` and CA-PF read them alike.

Layout of the release: ``<videos>/<subject>/Videos/<sequence>.<camera>.mp4`` (e.g.
``S1/Videos/Directions 1.54138969.mp4``), 50 fps like the motion capture. A video may run longer
than its poses (the extra frames are dropped, as VideoPose3D truncates its 2D); one that is
shorter or missing is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lifting.data.schema import poses_from_frame
from lifting.errors import DataError
from lifting.geometry import Camera
from lifting.images.crop import crop_boxes, from_crop
from lifting.images.render import RenderedView
from lifting.skeleton import H36M17

FIX = "place your Human3.6M videos as <data.h36m_videos>/<subject>/Videos/<sequence>.<camera>.mp4"


def video_path(videos: Path, subject: str, sequence: str, camera: str) -> Path:
    return videos / subject / "Videos" / f"{sequence}.{camera}.mp4"


def decode_frames(path: Path, count: int) -> np.ndarray:
    """The first ``count`` frames of a video as (count, H, W, 3) uint8 RGB."""
    if not path.is_file():
        raise DataError(path, "video not found", FIX)
    frames = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == count:
                    break
    except av.FFmpegError as err:
        raise DataError(path, f"not a readable video ({err})", FIX) from None
    if len(frames) < count:
        raise DataError(path, f"{len(frames)} frames, but its sequence has {count} poses",
                        "use the release's full video (it has at least one frame per pose)")
    return np.stack(frames)


def crop_frames(frames: np.ndarray, centres: np.ndarray, sizes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames -> (T, height, width, 3) uint8 crops of the (T, 2) boxes (image
    pixels, :mod:`lifting.images.crop`), bilinear, black outside the image."""
    count, image_h, image_w, _ = frames.shape
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    crop_px = np.broadcast_to(np.stack([u, v], -1).reshape(1, -1, 2), (count, width * height, 2))
    image_px = from_crop(crop_px, centres, sizes, width, height)  # pixel centres in the image
    grid = torch.as_tensor(image_px / np.array([image_w, image_h]) * 2.0 - 1.0, dtype=torch.float32)
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    sampled = F.grid_sample(pixels, grid.view(count, height, width, 2), mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    return sampled.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def h36m_views(videos: Path, poses3d: pd.DataFrame, cameras: dict[tuple[str, str], Camera], width: int,
               height: int) -> Iterator[RenderedView]:
    """Every (subject, sequence, camera) of the store's ``poses3d`` (world mm) as crops of its video,
    in the store's frame order."""
    for (subject, sequence), rows in poses3d.groupby(["subject", "sequence"], sort=True):
        rows = rows.sort_values("frame")
        world = poses_from_frame(rows, H36M17, "xyz").astype(np.float64)
        frames = rows["frame"].to_numpy(np.int32)
        for (camera_subject, camera_id), camera in sorted(cameras.items()):
            if camera_subject != subject:
                continue
            root = camera.world_to_camera(world[:, 0])
            centres, sizes = crop_boxes(root, camera, width, height)
            decoded = decode_frames(video_path(videos, subject, sequence, camera_id), int(frames.max()) + 1)
            images = crop_frames(decoded[frames], centres, sizes, width, height)
            yield RenderedView(subject, sequence, camera_id, frames, images, centres.astype(np.float32),
                               sizes.astype(np.float32), (camera.width, camera.height))
