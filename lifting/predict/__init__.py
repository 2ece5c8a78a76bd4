"""Lift your own 2D keypoints to 3D with a trained run: ``python -m lifting.predict``.

Modules, one job each: :mod:`~lifting.predict.formats` (COCO, OpenPose, MMPose and Parquet readers),
:mod:`~lifting.predict.track` (one person, gaps filled and flagged), :mod:`~lifting.predict.run`
(load a run, lift in chunks), :mod:`~lifting.predict.output` (Parquet), :mod:`~lifting.predict.draw`
(PNG/GIF), :mod:`~lifting.predict.bvh` (BVH), :mod:`~lifting.predict.pipeline` (all of it in order).
"""
