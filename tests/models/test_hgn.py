"""HGN network: parameter count, output shapes, and the fusion order against upstream's in-place form."""

import pytest
import torch

from lifting.models.graph import semgcn_adjacency, to_batch_major, to_joint_major
from lifting.models.hgn import HGN, Config
from lifting.skeleton import H36M17


def ring_graph(n: int, extra: int, seed: int) -> torch.Tensor:
    """(n, n) 0/1: a ring plus ``extra`` random chords, symmetric, no self loops."""
    generator = torch.Generator().manual_seed(seed)
    adj = torch.zeros(n, n)
    for k in range(n):
        adj[k, (k + 1) % n] = adj[(k + 1) % n, k] = 1.0
    for a, b in torch.randint(0, n, (extra, 2), generator=generator).tolist():
        if a != b:
            adj[a, b] = adj[b, a] = 1.0
    return adj


def graphs():
    return semgcn_adjacency(H36M17), ring_graph(48, 30, 0), ring_graph(96, 60, 1)


def test_parameter_count_is_the_papers_plus_one_edge_weight_per_adjacency_entry():
    adjacencies = graphs()
    model = HGN(adjacencies)
    non_zeros = [int(((a != 0) | torch.eye(a.shape[0], dtype=torch.bool)).sum()) for a in adjacencies]
    assert non_zeros[0] == 17 + 2 * 16
    edge_weights = 10 * non_zeros[0] + 9 * non_zeros[1] + 5 * non_zeros[2]
    total = sum(p.numel() for p in model.parameters())
    assert total - edge_weights == 1_040_527  # methods.md §3.2: ~1.04M
    assert sum(p.numel() for name, p in model.named_parameters() if name.endswith(".e")) == edge_weights


def test_outputs_have_the_three_branches_shapes_and_reach_every_parameter():
    model = HGN(graphs())
    for p in model.parameters():  # the non-local blocks start as the identity (zero BN): wake them up
        torch.nn.init.normal_(p, std=0.1)
    pose, fine, coarse = model.forward_all(torch.randn(4, 17, 2))
    assert pose.shape == (4, 17, 3) and coarse.shape == (4, 48, 3) and fine.shape == (4, 96, 3)
    (pose.square().mean() + coarse.square().mean() + fine.square().mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def upstream_forward(model: HGN, x: torch.Tensor):
    """Upstream's forward, written the way it computes: in-place ``+=`` on aliased tensors."""
    s, m, born = model.stages, model.fuse, model.to_branch3
    f1 = model.input(to_joint_major(x))
    f2 = model.to_branch2(f1)
    f1, f2 = s[0][0](f1), s[0][1](f2)
    f1 += m[0]["1>0"](f2)
    f2 += m[0]["0>1"](f1)  # f1 is already fused here
    f1, f2 = s[1][0](f1), s[1][1](f2)
    f1 += m[1]["1>0"](f2)
    f2 += m[1]["0>1"](f1)
    f3 = born["0"](f1) + born["1"](f2)
    for k in (2, 3):
        f1, f2, f3 = s[k][0](f1), s[k][1](f2), s[k][2](f3)
        f1 += m[k]["1>0"](f2) + m[k]["2>0"](f3)
        f2 += m[k]["0>1"](f1) + m[k]["2>1"](f3)
        f3 += m[k]["0>2"](f1) + m[k]["1>2"](f2)
    pose, coarse, fine = (to_batch_major(head(f)) for head, f in zip(model.heads, (f1, f2, f3)))
    return pose, fine, coarse


@torch.no_grad()
def test_sequential_fusion_is_upstreams_in_place_order_and_simultaneous_differs():
    torch.manual_seed(0)
    sequential = HGN(graphs(), Config(fusion="sequential")).eval()
    for p in sequential.parameters():
        torch.nn.init.normal_(p, std=0.1)
    simultaneous = HGN(graphs(), Config(fusion="simultaneous")).eval()
    simultaneous.load_state_dict(sequential.state_dict())
    x = torch.randn(3, 17, 2)
    ours, reference, other = sequential.forward_all(x), upstream_forward(sequential, x), simultaneous.forward_all(x)
    for a, b, c in zip(ours, reference, other):
        assert torch.allclose(a, b, atol=1e-5)
        assert not torch.allclose(a, c, atol=1e-3)


def test_refuses_adjacencies_of_other_sizes_and_other_inputs():
    adj17, adj48, _ = graphs()
    with pytest.raises(ValueError, match="17, 48, 96"):
        HGN((adj17, adj48, adj48))
    with pytest.raises(ValueError, match=r"expected \(B, 17, 2\)"):
        HGN(graphs())(torch.zeros(2, 16, 2))


def test_frames_without_markers_train_on_the_joint_term_only():
    """NaN markers (a Human3.6M frame without an SMPL fit) drop that frame's surface terms."""
    torch.manual_seed(0)
    model = HGN(graphs()).eval()
    inputs, targets = torch.randn(6, 17, 2), torch.randn(6, 17, 3)
    markers = torch.randn(6, 96 + 48, 3)
    partial = markers.clone()
    partial[[1, 4]] = float("nan")
    known = torch.tensor([0, 2, 3, 5])
    with torch.no_grad():
        pose, fine, coarse = model.forward_all(inputs)
        joint_term = 100.0 * torch.mean((pose - targets) ** 2)
        expected = (joint_term + torch.mean((fine[known] - markers[known, :96]) ** 2)
                    + torch.mean((coarse[known] - markers[known, 96:]) ** 2))
        assert torch.allclose(model.loss(inputs, targets, aux_targets=partial), expected)
        assert torch.allclose(model.loss(inputs, targets, aux_targets=torch.full_like(markers, float("nan"))), joint_term)
        ablation = HGN(graphs(), Config(mesh_loss=False)).eval()
        ablation.load_state_dict(model.state_dict())
        assert torch.allclose(ablation.loss(inputs, targets), joint_term)
