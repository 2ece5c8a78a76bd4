"""Skeleton adjacency matrices and the joint-mixing primitive shared by the graph models.

Used by :mod:`lifting.models.semgcn` and :mod:`lifting.models.modulated_gcn`.

Adjacencies (methods.md §5.1, §7.2), all ``(J, J)`` float32 tensors built from a
:class:`~lifting.skeleton.JointSet`'s bones:

* :func:`skeleton_adjacency`: ``A``, symmetric 0/1, one entry per bone in each direction, zero
  diagonal;
* :func:`semgcn_adjacency`: ``rownorm(A + I)``, as SemGCN (garyzhao/SemGCN
  ``common/graph_utils.py``) builds it; only its non-zero pattern matters to SemGCN, whose
  learnable weights replace the values;
* :func:`modgcn_adjacency`: ``D⁻¹A + I``, i.e. ``A`` row-normalised *without* self loops and the
  diagonal then set to 1, as Modulated GCN (ZhimingZo/Modulated-GCN
  ``Modulated_GCN_gt/common/graph_utils.py``) builds it.

Layout. Both models run their hidden layers in a *joint-major* layout ``(J, B, C)`` rather than
``(B, J, C)`` (DESIGN.md §6). A graph convolution is then one ``[J·B, C] @ [C, C']`` GEMM for the
features and one ``[J, J] @ [J, B·C']`` GEMM for the joint mix (:func:`mix_joints`), with no
transposes in between; in the ``(B, J, C)`` layout the mix is B small batched products and the
whole layer runs about 4× slower on a 2-core CPU (fwd+bwd, B=256, C=128). BatchNorm over the
``(J·B, C)`` view normalises each channel over batch and joints, exactly as upstream's
``BatchNorm1d`` over ``(B, C, J)`` does.
"""

from __future__ import annotations

import torch

from lifting.skeleton import H36M16, H36M17, JointSet

#: The joint sets a graph model can be built for, by joint count (``build(cfg, num_joints)``).
JOINT_SETS_BY_COUNT: dict[int, JointSet] = {H36M16.num_joints: H36M16, H36M17.num_joints: H36M17}


def joint_set_for(num_joints: int) -> JointSet:
    """The skeleton a graph model with ``num_joints`` joints uses: 16 -> h36m16, 17 -> h36m17."""
    try:
        return JOINT_SETS_BY_COUNT[num_joints]
    except KeyError:
        raise ValueError(
            f"graph models need a known skeleton; no joint set has {num_joints} joints "
            f"(known counts: {sorted(JOINT_SETS_BY_COUNT)})"
        ) from None


def skeleton_adjacency(joint_set: JointSet) -> torch.Tensor:
    """``(J, J)`` symmetric 0/1 adjacency of the kinematic tree, zero diagonal."""
    j = joint_set.num_joints
    adj = torch.zeros(j, j, dtype=torch.float32)
    for child, parent in joint_set.bones:
        adj[child, parent] = 1.0
        adj[parent, child] = 1.0
    return adj


def row_normalize(adj: torch.Tensor) -> torch.Tensor:
    """Divide each row of a ``(J, J)`` matrix by its sum; an all-zero row stays zero."""
    rowsum = adj.sum(dim=1, keepdim=True)
    return torch.where(rowsum > 0, adj / rowsum.clamp_min(torch.finfo(adj.dtype).tiny), 0.0)


def semgcn_adjacency(joint_set: JointSet) -> torch.Tensor:
    """``(J, J)`` ``rownorm(A + I)`` (SemGCN). Row ``i`` is ``1 / (deg(i) + 1)`` on ``i``'s
    closed neighbourhood and 0 elsewhere."""
    adj = skeleton_adjacency(joint_set)
    return row_normalize(adj + torch.eye(adj.shape[0]))


def modgcn_adjacency(joint_set: JointSet) -> torch.Tensor:
    """``(J, J)`` ``D⁻¹A + I`` (Modulated GCN): neighbours ``1 / deg(i)``, diagonal 1."""
    adj = row_normalize(skeleton_adjacency(joint_set))
    adj.fill_diagonal_(1.0)
    return adj


def to_joint_major(x: torch.Tensor) -> torch.Tensor:
    """``(B, J, C)`` -> contiguous ``(J, B, C)``."""
    return x.transpose(0, 1).contiguous()


def to_batch_major(x: torch.Tensor) -> torch.Tensor:
    """``(J, B, C)`` -> contiguous ``(B, J, C)``."""
    return x.transpose(0, 1).contiguous()


def mix_joints(adj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``out[i] = sum_j adj[i, j] * h[j]`` for joint-major ``h`` ``(J, B, C)``: one GEMM.

    Args:
        adj: ``(J, J)``. h: ``(J, B, C)``, contiguous.
    Returns:
        ``(J, B, C)``.
    """
    j, b, c = h.shape
    return (adj @ h.reshape(j, b * c)).view(j, b, c)
