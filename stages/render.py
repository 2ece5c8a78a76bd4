"""Stage render: every view as a Context-Aware PoseFormer crop (data/images/): the embedded data
rendered (:mod:`lifting.images.render`), Human3.6M's cut from the user's own videos
(:mod:`lifting.images.video`, ``data.h36m_videos``).

Writes ``views.parquet`` (:mod:`lifting.images.store`) and ``summary.json`` (views, bytes on
disk, seconds).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from lifting.config import RenderParams, images_needed, parse_section
from lifting.errors import DataError
from lifting.data.schema import cameras_from_frame
from lifting.data.store import read_store
from lifting.images.render import render_embedded
from lifting.images.video import h36m_views
from lifting.images.store import write_views
from lifting.io import atomic_dir
from stages.common import data_params, parser, read_params, run, write_skipped

log = logging.getLogger("render")


def cli():
    command = parser(__doc__)
    command.add_argument("--raw", default="data/raw", help="raw data folder (fetch's output)")
    command.add_argument("--store", default="data/parquet", help="the store (Human3.6M: the poses that place the crops)")
    command.add_argument("--out", default="data/images", help="output folder")
    return command


def settings(params: dict, args) -> tuple:
    """What this stage takes from params.yaml: exactly the keys dvc.yaml declares for it
    (tests/test_stage_params.py checks this against every key of params.yaml).

    Returns (the data section's source and inputs2d, the crop size, whether images are needed)."""
    data = data_params(params, "source", "inputs2d", "h36m_videos")
    return (data, parse_section(RenderParams, params.get("render", {}), "render"),
            images_needed(data.inputs2d, params.get("runs", {})))


def main(argv=None) -> None:
    args = cli().parse_args(argv)
    data, size, needed = settings(read_params(args.params), args)
    if not needed:
        write_skipped(args.out)
        return
    if data.source != "embedded" and not data.h36m_videos:
        raise DataError(args.params, "Human3.6M's images come from your own copy of the videos, and "
                                     "data.h36m_videos is not set",
                        "set data.h36m_videos to the release's video folder (<subject>/Videos/*.mp4)")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    start = time.perf_counter()
    with atomic_dir(args.out) as out:
        if data.source == "embedded":
            views = render_embedded(Path(args.raw) / "embedded" / "motions", size.width, size.height,
                                    body=size.body, outfits=size.outfits)
        else:  # the frames of the user's videos, cut into the same crops
            tables = read_store(args.store, data.source)
            views = h36m_views(Path(data.h36m_videos), tables.poses3d, cameras_from_frame(tables.cameras),
                               size.width, size.height)
        meta = {"source": data.source,
                **({"body": size.body, "outfits": size.outfits} if data.source == "embedded" else {})}
        count = write_views(out / "views.parquet", views, meta)
        seconds = time.perf_counter() - start
        summary = {"views": count, "bytes": (out / "views.parquet").stat().st_size, "seconds": round(seconds, 2),
                   "width": size.width, "height": size.height, **meta}
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("%d views in %.1f s (%.0f views/s), %.1f MB", count, seconds, count / seconds, summary["bytes"] / 1e6)


if __name__ == "__main__":
    run(main)
