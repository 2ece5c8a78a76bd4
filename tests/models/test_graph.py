"""Adjacency helpers shared by SemGCN and Modulated GCN: known answers on a 3-joint chain."""

from __future__ import annotations

import pytest
import torch

from lifting.models import graph
from lifting.skeleton import H36M16, H36M17, JointSet

# 0 - 1 - 2
CHAIN3 = JointSet(name="chain3", names=("a", "b", "c"), parents=(-1, 0, 1), left=(), right=())


def test_skeleton_adjacency_of_a_chain():
    expected = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert torch.equal(graph.skeleton_adjacency(CHAIN3), expected)


def test_semgcn_adjacency_is_rownorm_of_a_plus_i():
    expected = torch.tensor([
        [1 / 2, 1 / 2, 0.0],
        [1 / 3, 1 / 3, 1 / 3],
        [0.0, 1 / 2, 1 / 2],
    ])
    torch.testing.assert_close(graph.semgcn_adjacency(CHAIN3), expected)


def test_modgcn_adjacency_is_rownorm_of_a_then_unit_diagonal():
    expected = torch.tensor([
        [1.0, 1.0, 0.0],
        [1 / 2, 1.0, 1 / 2],
        [0.0, 1.0, 1.0],
    ])
    torch.testing.assert_close(graph.modgcn_adjacency(CHAIN3), expected)


@pytest.mark.parametrize("joint_set", [H36M16, H36M17])
def test_h36m_adjacencies(joint_set):
    j = joint_set.num_joints
    a = graph.skeleton_adjacency(joint_set)
    assert torch.equal(a, a.T)
    assert a.diagonal().sum() == 0
    assert a.sum() == 2 * (j - 1)  # a tree: one bone per non-root joint, both directions
    degree = a.sum(1)
    assert degree[joint_set.index("Thorax")] == 4  # spine, neck/head, both shoulders
    sem = graph.semgcn_adjacency(joint_set)
    torch.testing.assert_close(sem.sum(1), torch.ones(j))
    assert torch.equal(sem > 0, (a + torch.eye(j)) > 0)
    mod = graph.modgcn_adjacency(joint_set)
    torch.testing.assert_close(mod.diagonal(), torch.ones(j))
    torch.testing.assert_close(mod.sum(1), torch.full((j,), 2.0))  # 1 (self) + 1 (neighbours)


def test_row_normalize_leaves_zero_rows_zero():
    out = graph.row_normalize(torch.tensor([[0.0, 0.0], [1.0, 3.0]]))
    assert torch.equal(out, torch.tensor([[0.0, 0.0], [0.25, 0.75]]))


def test_joint_set_for_counts():
    assert graph.joint_set_for(16) is H36M16
    assert graph.joint_set_for(17) is H36M17
    with pytest.raises(ValueError, match="15 joints"):
        graph.joint_set_for(15)


def test_mix_joints_and_layout_round_trip():
    torch.manual_seed(0)
    adj = torch.randn(5, 5)
    x = torch.randn(3, 5, 4)  # (B, J, C)
    h = graph.to_joint_major(x)
    assert h.shape == (5, 3, 4) and h.is_contiguous()
    assert torch.equal(graph.to_batch_major(h), x)
    expected = torch.einsum("ij,bjc->bic", adj, x)
    torch.testing.assert_close(graph.to_batch_major(graph.mix_joints(adj, h)), expected)
