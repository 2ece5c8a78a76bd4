"""The methods: one module per method, registered by name in a plain dict.

Each module exposes ``Config``, ``build(cfg, num_joints)`` (HGN: ``build(cfg, num_joints, surface)``;
:func:`lifting.runner.build_model` builds any), ``INPUT_SPEC`` and ``PAPER_SCHEDULE``
(see :mod:`lifting.models.spec`); ``PAPER_SCHEDULE is None`` marks a lookup method with no training.
"""

from lifting.models import (context_poseformer, gridconv, hgn, knn, modulated_gcn, rie, semgcn, simple_baseline,
                            videopose3d)

METHODS = {
    "knn": knn,
    "simple_baseline": simple_baseline,
    "semgcn": semgcn,
    "modulated_gcn": modulated_gcn,
    "gridconv": gridconv,
    "hgn": hgn,
    "videopose3d": videopose3d,
    "rie": rie,
    "context_poseformer": context_poseformer,
}
