"""A picture of rendered test views with the detector's 2D (red) over the ground truth (green).

Usage (repository root, venv active, after `dvc repro detect2d`)::

    python -m benchmarks.detector_picture --out benchmarks/results/detector/test-views.png

Draws ``--count`` test views, one per action, each crop upscaled ``--scale`` times with both
skeletons (the joint set's parent table), and the view's mean pixel error (image pixels) above it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from lifting.data.schema import poses_from_frame, read_table  # noqa: E402
from lifting.detector import view_labels  # noqa: E402
from lifting.images.context import context_rows  # noqa: E402
from lifting.images.crop import to_crop  # noqa: E402
from lifting.images.store import read_views  # noqa: E402
from lifting.skeleton import H36M17  # noqa: E402


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--images", default="data/images")
    cli.add_argument("--detected", default="data/detected")
    cli.add_argument("--store", default="data/parquet")
    cli.add_argument("--params", default="params.yaml")
    cli.add_argument("--count", type=int, default=8)
    cli.add_argument("--scale", type=int, default=4)
    cli.add_argument("--out", default="benchmarks/results/detector/test-views.png")
    args = cli.parse_args(argv)
    params = yaml.safe_load(Path(args.params).read_text())
    views = read_views(Path(args.images) / "views.parquet")
    detected, _ = read_table(Path(args.detected) / "poses2d.parquet", {"table": "poses2d"})
    found = poses_from_frame(detected, H36M17, "uv")[context_rows(detected, views.keys, args.detected)]
    truth = view_labels(views, Path(args.store), params["data"]["source"], crop=False)
    test = np.flatnonzero(views.keys["subject"].isin(params["data"]["test_subjects"]).to_numpy())
    rng = np.random.default_rng(0)
    picked = [rng.choice(test[(views.keys["sequence"].to_numpy()[test] == sequence)])
              for sequence in sorted(set(views.keys["sequence"].to_numpy()[test]))]
    picked = [picked[i] for i in np.linspace(0, len(picked) - 1, args.count).round().astype(int)]
    figure, axes = plt.subplots(1, len(picked), figsize=(2.0 * len(picked), 3.2))
    parents = H36M17.parents
    for axis, row in zip(np.atleast_1d(axes), picked):
        image = np.kron(views.images[row], np.ones((args.scale, args.scale, 1), np.uint8))
        axis.imshow(image)
        error = np.linalg.norm(found[row] - truth[row], axis=-1).mean()
        for pose, colour in ((truth[row], "lime"), (found[row], "red")):
            crop = to_crop(pose[None], views.centres[row:row + 1], views.sizes[row:row + 1], *views.crop_size)[0]
            crop = crop * args.scale
            for joint, parent in enumerate(parents):
                if parent >= 0:
                    axis.plot(crop[[joint, parent], 0], crop[[joint, parent], 1], color=colour, linewidth=1.2)
            axis.scatter(crop[:, 0], crop[:, 1], s=6, color=colour)
        key = views.keys.iloc[row]
        axis.set_title(f"{key['subject']} {key['sequence']}\ncam {key['camera']} f{key['frame']}: {error:.0f} px",
                       fontsize=7)
        axis.axis("off")
    figure.suptitle("rendered test views: ground truth (green), detected (red)", fontsize=9)
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
