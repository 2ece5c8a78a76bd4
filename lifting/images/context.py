"""The image context of each sample, for a method that looks at the frame (Context-Aware PoseFormer).

An :class:`ImageContext` holds, row for row with a split's 2D inputs, the rendered (or extracted)
crop each pose was seen in and where that crop lies in the image. The box is kept in the same
screen-normalised coordinates as the 2D inputs (:func:`lifting.geometry.normalize_screen_coordinates`),
so a joint's position in the crop follows from its 2D input alone, and mirroring a sample (the
flip augmentation and flip test of :mod:`lifting.train`) mirrors image, box and 2D together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lifting.errors import DataError

#: The columns that identify one view of one frame.
VIEW_KEYS = ["subject", "sequence", "camera", "frame"]


@dataclass(frozen=True)
class ImageContext:
    """Crops and their boxes, one per sample.

    Attributes:
        images: (N, 3, H, W) uint8 RGB crops.
        boxes: (N, 4) float32 crop centre (x, y) and size (width, height) in screen-normalised
            units (``x / w * 2 - 1``, ``y / w * 2 - h / w``; sizes ``* 2 / w``).
    """

    images: torch.Tensor
    boxes: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)

    def take(self, index) -> ImageContext:
        """The rows ``index`` (a tensor of row numbers, a mask or a slice)."""
        return ImageContext(self.images[index], self.boxes[index])

    def to(self, device: torch.device) -> ImageContext:
        return ImageContext(self.images.to(device), self.boxes.to(device))

    def mirrored(self) -> ImageContext:
        """Every crop mirrored about its vertical centre line, and its box about the image's
        (the screen-normalised x of the box centre changes sign), as :meth:`Codec.mirror_inputs`
        mirrors the 2D."""
        boxes = self.boxes.clone()
        boxes[:, 0] = -boxes[:, 0]
        return ImageContext(self.images.flip(-1), boxes)

    def where(self, mask: torch.Tensor, other: ImageContext) -> ImageContext:
        """Row by row, ``other`` where the (N,) bool ``mask`` is set, else this one."""
        return ImageContext(torch.where(mask[:, None, None, None], other.images, self.images),
                            torch.where(mask[:, None], other.boxes, self.boxes))

    def crop_coordinates(self, points: torch.Tensor) -> torch.Tensor:
        """(B, J, 2) screen-normalised 2D -> (B, J, 2) positions in the crop, -1 at its left (top)
        edge and +1 at its right (bottom) edge."""
        centre, size = self.boxes[:, None, :2], self.boxes[:, None, 2:]
        return 2.0 * (points - centre) / size


def screen_boxes(centres_px: np.ndarray, sizes_px: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """(N, 2) crop centres and (N, 2) sizes in pixels, with (N, 2) image (width, height) ->
    (N, 4) float32 screen-normalised boxes (see :class:`ImageContext`)."""
    width, height = image_sizes[:, 0:1].astype(np.float64), image_sizes[:, 1:2].astype(np.float64)
    centre = centres_px / width * 2.0 - np.concatenate([np.ones_like(width), height / width], axis=1)
    return np.concatenate([centre, sizes_px / width * 2.0], axis=1).astype(np.float32)


def context_rows(view_keys: pd.DataFrame, meta: pd.DataFrame, where) -> np.ndarray:
    """(n,) row numbers into ``view_keys`` (VIEW_KEYS columns) of each row of ``meta``; every row
    of ``meta`` must have a view, else one clear error naming ``where``."""
    index = pd.MultiIndex.from_frame(view_keys[VIEW_KEYS].astype({"camera": str, "frame": np.int64}))
    wanted = pd.MultiIndex.from_frame(meta[VIEW_KEYS].astype({"camera": str, "frame": np.int64}))
    rows = index.get_indexer(wanted)
    if (rows < 0).any():
        first = meta.iloc[int(np.flatnonzero(rows < 0)[0])][VIEW_KEYS].to_dict()
        raise DataError(where, f"no image for {int((rows < 0).sum())} of the {len(meta)} samples (first: {first})",
                        "re-run `dvc repro render`: every frame of the 2D source needs its crop")
    return rows


def select(images: np.ndarray, boxes: np.ndarray, rows: np.ndarray) -> ImageContext:
    """An :class:`ImageContext` of ``rows`` of (N, H, W, 3) uint8 ``images`` and (N, 4) ``boxes``."""
    return ImageContext(torch.from_numpy(np.ascontiguousarray(images[rows].transpose(0, 3, 1, 2))),
                        torch.from_numpy(boxes[rows]))
