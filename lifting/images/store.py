"""Rendered views in one Parquet file: keys, crop boxes and JPEG images.

Columns: subject, sequence, camera (strings), frame (int32), centre_x, centre_y, size_x, size_y
(float32, the CA-PF crop box in image pixels, :mod:`lifting.images.crop`), image_width,
image_height (int32, the camera's image) and ``image`` (binary: one JPEG of the crop, RGB, quality
:data:`JPEG_QUALITY`). Key-value metadata (house style of :mod:`lifting.data.schema`):
``lifting.table=views``, ``lifting.width``, ``lifting.height`` and whatever the writer adds (e.g.
the data source). Pages carry CRC32 checksums, verified on read.

Why JPEG: Human3.6M's frames are JPEGs too (upstream extracts them with ffmpeg), and the
crops carry sensor-like noise that lossless coders cannot shrink. Measured on 73 views of 64x48
(S1 walk, one camera): raw 9,216 B per view; raw bytes through zstd 8.3 kB; PNG 5.1 kB; lossless
WebP 4.8 kB at ~100 views/s; JPEG quality 95 1.9 kB, quality 90 1.5 kB. The whole embedded data
(56,268 views): about 85 MB. Decoding is deterministic for a given Pillow (pinned).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from lifting.data.split import LiftingData
from lifting.data.schema import METADATA_PREFIX, read_metadata
from lifting.errors import DataError
from lifting.images.context import ImageContext, context_rows, screen_boxes, select
from lifting.io import atomic_path

TABLE = "views"
KEYS = ("subject", "sequence", "camera", "frame")
BOX_COLUMNS = ("centre_x", "centre_y", "size_x", "size_y")
IMAGE_SIZE_COLUMNS = ("image_width", "image_height")
FIX = "rebuild it with `dvc repro render`"
JPEG_QUALITY = 90


class RenderedViews(NamedTuple):
    """What :func:`read_views` returns.

    Attributes:
        keys: DataFrame (subject, sequence, camera, frame). images: (N, H, W, 3) uint8.
        centres, sizes: (N, 2) float32 crop boxes, image pixels. image_sizes: (N, 2) int the
        (width, height) of the image each crop was cut from.
    """

    keys: pd.DataFrame
    images: np.ndarray
    centres: np.ndarray
    sizes: np.ndarray
    image_sizes: np.ndarray

    @property
    def crop_size(self) -> tuple[int, int]:
        """(width, height) of the crops in pixels."""
        return int(self.images.shape[2]), int(self.images.shape[1])


def encode_jpeg(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> JPEG bytes (quality :data:`JPEG_QUALITY`, 4:2:0 chroma as ffmpeg's)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def write_views(path: str | Path, views: Iterable, meta: dict[str, str] | None = None) -> int:
    """Write rendered views (objects with subject, sequence, camera, frames, images, centres, sizes,
    e.g. :class:`lifting.images.render.RenderedView`) to one Parquet file, atomically.

    Args:
        path: the output file. views: an iterable (consumed once; may be a generator).
        meta: extra key-value metadata (stored with the ``lifting.`` prefix).
    Returns:
        the number of rows (views) written.
    """
    path = Path(path)
    schema = pa.schema([("subject", pa.string()), ("sequence", pa.string()), ("camera", pa.string()),
                        ("frame", pa.int32()), *[(c, pa.float32()) for c in BOX_COLUMNS],
                        *[(c, pa.int32()) for c in IMAGE_SIZE_COLUMNS], ("image", pa.binary())])
    rows, size = 0, None
    with atomic_path(path) as tmp:
        writer = None
        try:
            for view in views:
                images = np.asarray(view.images)
                if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
                    raise ValueError(f"images must be (T, H, W, 3) uint8, got {images.dtype} {images.shape}")
                if size is None:
                    size = images.shape[1:3]
                    kv = {"table": TABLE, "height": size[0], "width": size[1], **(meta or {})}
                    schema = schema.with_metadata({f"{METADATA_PREFIX}{k}": str(v) for k, v in kv.items()})
                    writer = pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=["subject", "sequence", "camera"],
                                              write_page_checksum=True)
                elif images.shape[1:3] != size:
                    raise ValueError(f"all views must have one size: {images.shape[1:3]} after {size}")
                count = len(images)
                centres, sizes = np.asarray(view.centres, np.float32), np.asarray(view.sizes, np.float32)
                columns = {"subject": [view.subject] * count, "sequence": [view.sequence] * count,
                           "camera": [view.camera] * count, "frame": np.asarray(view.frames, np.int32),
                           "centre_x": centres[:, 0], "centre_y": centres[:, 1],
                           "size_x": sizes[:, 0], "size_y": sizes[:, 1],
                           "image_width": np.full(count, view.image_size[0], np.int32),
                           "image_height": np.full(count, view.image_size[1], np.int32),
                           "image": [encode_jpeg(image) for image in images]}
                writer.write_table(pa.Table.from_pydict(columns, schema=schema))
                rows += count
            if writer is None:
                raise ValueError(f"refusing to write {path}: no views")
        finally:
            if writer is not None:
                writer.close()
    return rows


def read_views(path: str | Path) -> RenderedViews:
    """Read a views file written by :func:`write_views`, checking its metadata and every image.

    Returns:
        :class:`RenderedViews`: keys (DataFrame: subject, sequence, camera, frame), images
        (N, H, W, 3) uint8, centres (N, 2) and sizes (N, 2) float32 (image pixels).
    Raises:
        DataError: a missing, corrupt or wrong-table file, or an image that does not decode to
            the recorded size.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found", FIX)
    try:
        meta = read_metadata(path)
    except DataError as err:
        raise DataError(path, err.problem, FIX) from None
    if meta.get("table") != TABLE:
        raise DataError(path, f"metadata table={meta.get('table')!r}, expected {TABLE!r}", FIX)
    try:
        height, width = int(meta["height"]), int(meta["width"])
    except (KeyError, ValueError):
        raise DataError(path, "metadata width/height missing or not integers", FIX) from None
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(path, f"cannot read table ({err})", FIX) from None
    missing = [c for c in (*KEYS, *BOX_COLUMNS, *IMAGE_SIZE_COLUMNS, "image") if c not in table.column_names]
    if missing:
        raise DataError(path, f"missing columns {missing}", FIX)
    keys = table.select(list(KEYS)).to_pandas()
    images = np.empty((table.num_rows, height, width, 3), np.uint8)
    for i, data in enumerate(table.column("image").to_pylist()):
        try:
            with Image.open(io.BytesIO(data)) as image:
                decoded = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
        except Exception as err:  # Pillow raises several types for damaged data
            raise DataError(path, f"image of row {i} ({keys.iloc[i].to_dict()}) does not decode "
                                  f"({type(err).__name__}: {err})", FIX) from None
        if decoded.shape != (height, width, 3):
            raise DataError(path, f"image of row {i} is {decoded.shape}, expected {(height, width, 3)}", FIX)
        images[i] = decoded
    box = np.stack([table.column(c).to_numpy() for c in BOX_COLUMNS], axis=1).astype(np.float32)
    image_sizes = np.stack([table.column(c).to_numpy() for c in IMAGE_SIZE_COLUMNS], axis=1)
    return RenderedViews(keys, images, box[:, :2].copy(), box[:, 2:].copy(), image_sizes)


def images_folder(folder: str | Path | None) -> Path:
    """The views file in render's output ``folder`` (a method that looks at the image needs it)."""
    if folder is None:
        raise DataError(None, "this method looks at the image and no images folder was given",
                        "pass --images data/images (its DVC stage does)")
    return Path(folder) / "views.parquet"


class ViewCrops:
    """The rendered views of ``path`` (read once), from which any rows' crops are taken."""

    def __init__(self, path: Path):
        self.path = path
        self.views = read_views(path)
        self.boxes = screen_boxes(self.views.centres, self.views.sizes, self.views.image_sizes)

    def context(self, meta: pd.DataFrame) -> ImageContext:
        """The crops (:class:`~lifting.images.context.ImageContext`) of the rows whose keys are ``meta``."""
        return select(self.views.images, self.boxes, context_rows(self.views.keys, meta, self.path))


def attach_images(data: LiftingData, path: Path) -> LiftingData:
    """``data`` with each training and test row's crop (:class:`~lifting.images.context.ImageContext`)."""
    crops = ViewCrops(path)
    return dataclasses.replace(data, train_context=crops.context(data.train_meta),
                               test_context=crops.context(data.test_meta))
