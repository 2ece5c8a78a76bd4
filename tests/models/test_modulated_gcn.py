"""Modulated GCN: paper parameter counts, output contract, reference maths, modulation gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lifting.models import graph
from lifting.models import modulated_gcn as mg
from lifting.skeleton import H36M16, JointSet

CHAIN3 = JointSet(name="chain3", names=("a", "b", "c"), parents=(-1, 0, 1), left=(), right=())


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_configurations_have_the_published_parameter_counts():
    # GT: README 0.29M. Per ModGC(C->C'): 2CC' (W) + JC' (M) + J² (adj2) + C' (bias).
    assert _num_params(mg.build(mg.Config(), 16)) == 287_923
    # Detections (CPN, 17 joints, 384 hidden, embedded-Gaussian non-local): ≈2.73M.
    assert _num_params(mg.build(mg.DETECTION, 17)) == 2_731_840
    # The non-local block alone: θ, φ, g (384->192, bias), W_z (192->384, bias), BN(384).
    assert _num_params(mg.JointNonLocal(384)) == 3 * (384 * 192 + 192) + 192 * 384 + 384 + 2 * 384


def test_schedules_and_input_specs():
    s = mg.PAPER_SCHEDULE
    assert (s.optimizer, s.lr, s.lr_decay, s.lr_decay_every, s.lr_decay_unit, s.amsgrad) == (
        "adam", 1e-3, 0.96, 100_000, "step", False)
    assert (s.batch_size, s.epochs, s.loss, s.l1_weight, s.grad_clip) == (64, 50, "mse", 0.1, 1.0)
    d = mg.DETECTION_SCHEDULE
    assert (d.optimizer, d.amsgrad, d.lr, d.lr_decay, d.lr_decay_every, d.lr_decay_unit) == (
        "adam", True, 5e-3, 0.9, 4, "epoch")
    assert (d.batch_size, d.epochs, d.loss, d.l1_weight, d.grad_clip) == (256, 30, "mpjpe", 0.01, None)
    spec = mg.INPUT_SPEC
    assert (spec.joint_set, spec.input_norm, spec.target, spec.flip_test) == (
        "h36m16", "screen", "metres", False)
    det = mg.DETECTION_INPUT_SPEC
    assert (det.joint_set, det.input_norm, det.target, det.flip_test) == (
        "h36m17", "screen", "metres", True)
    assert mg.Config() == mg.Config(hidden=128, num_layers=4, dropout=0.0, non_local=False)
    assert mg.DETECTION == mg.Config(hidden=384, num_layers=4, dropout=0.2, non_local=True)


@pytest.mark.parametrize("num_joints", [16, 17])
@pytest.mark.parametrize("non_local", [False, True])
def test_forward_shapes(num_joints, non_local):
    torch.manual_seed(0)
    model = mg.build(mg.Config(hidden=32, dropout=0.2, non_local=non_local), num_joints)
    out = model(torch.randn(4, num_joints, 2))
    assert out.shape == (4, num_joints, 3)
    assert torch.isfinite(out).all()
    model.eval()
    assert model(torch.randn(1, num_joints, 2)).shape == (1, num_joints, 3)
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(4, num_joints, 3))


def test_modulated_graph_conv_initial_state():
    adj = graph.modgcn_adjacency(H36M16)
    conv = mg.ModulatedGraphConv(4, 6, adj)
    assert torch.equal(conv.M, torch.ones(16, 6))
    assert torch.equal(conv.adj2, torch.full((16, 16), 1e-6))
    # Ã is symmetric even though D⁻¹A + I is not (rows of different degree).
    assert not torch.equal(adj, adj.T)
    a = conv.affinity()
    torch.testing.assert_close(a, a.T)
    torch.testing.assert_close(a, 0.5 * (adj + adj.T) + 1e-6)


def test_modulated_graph_conv_known_answer_on_a_chain():
    conv = mg.ModulatedGraphConv(1, 1, graph.modgcn_adjacency(CHAIN3))
    with torch.no_grad():
        conv.W[0].fill_(2.0)  # self
        conv.W[1].fill_(1.0)  # neighbours
        conv.adj2.zero_()
        conv.bias.zero_()
        conv.M.copy_(torch.tensor([[1.0], [10.0], [1.0]]))  # joint 1's channel scaled by 10
    x = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)  # (J, B, C)
    # Ã = sym([[1, 1, 0], [.5, 1, .5], [0, 1, 1]]) = [[1, .75, 0], [.75, 1, .75], [0, .75, 1]]
    # out_i = Ã_ii M_i 2 x_i + Σ_{k≠i} Ã_ik M_k x_k
    expected = torch.tensor([
        1 * 1 * 2 * 1 + 0.75 * 10 * 2,
        1 * 10 * 2 * 2 + 0.75 * 1 * 1 + 0.75 * 1 * 3,
        0.75 * 10 * 2 + 1 * 1 * 2 * 3,
    ])
    torch.testing.assert_close(conv(x).flatten(), expected)


def _reference_modulated_graph_conv(conv: mg.ModulatedGraphConv, adj, x):
    """Dense (B, J, C) formula of methods.md §5.1."""
    a = adj + conv.adj2
    a = (a.T + a) / 2
    eye = torch.eye(adj.shape[0])
    h0 = conv.M * (x @ conv.W[0])
    h1 = conv.M * (x @ conv.W[1])
    return torch.matmul(a * eye, h0) + torch.matmul(a * (1 - eye), h1) + conv.bias


def test_modulated_graph_conv_matches_the_definition():
    torch.manual_seed(0)
    adj = graph.modgcn_adjacency(H36M16)
    conv = mg.ModulatedGraphConv(5, 7, adj)
    with torch.no_grad():
        conv.M.normal_()
        conv.adj2.normal_(0.0, 0.1)
    x = torch.randn(3, 16, 5)
    out = graph.to_batch_major(conv(graph.to_joint_major(x)))
    torch.testing.assert_close(out, _reference_modulated_graph_conv(conv, adj, x))


def test_joint_non_local_matches_embedded_gaussian_and_starts_as_identity():
    torch.manual_seed(0)
    block = mg.JointNonLocal(8)
    h = torch.randn(17, 3, 8)  # (J, B, C)
    assert torch.equal(block(h), h)  # BN scale and shift start at 0
    with torch.no_grad():
        block.bn.weight.normal_()
        block.bn.bias.normal_()
    block.eval()
    x = graph.to_batch_major(h)  # (B, J, C)
    f = torch.softmax(block.theta(x) @ block.phi(x).transpose(1, 2), dim=-1)  # (B, J, J)
    expected = x + block.bn(block.W_z(f @ block.g(x)).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(graph.to_batch_major(block(h)), expected)


@pytest.mark.parametrize("cfg,num_joints", [(mg.Config(hidden=16), 16),
                                            (mg.Config(hidden=16, non_local=True), 17)])
def test_modulation_parameters_receive_gradients(cfg, num_joints):
    torch.manual_seed(0)
    model = mg.build(cfg, num_joints)
    model(torch.randn(8, num_joints, 2)).square().mean().backward()
    convs = [m for m in model.modules() if isinstance(m, mg.ModulatedGraphConv)]
    assert len(convs) == 2 + 2 * cfg.num_layers
    for conv in convs:
        assert conv.M.grad is not None and conv.M.grad.abs().sum() > 0
        assert conv.adj2.grad is not None and conv.adj2.grad.abs().sum() > 0
        # adj2 reaches the output only through (adj2 + adj2ᵀ)/2: its gradient is symmetric, and
        # it covers joint pairs that share no bone.
        torch.testing.assert_close(conv.adj2.grad, conv.adj2.grad.T)
        assert conv.adj2.grad[0, num_joints - 1] != 0


@pytest.mark.parametrize("cfg,num_joints", [(mg.Config(), 16), (mg.DETECTION, 17)],
                         ids=["gt", "detection"])
def test_one_adam_step_lowers_the_loss(cfg, num_joints):
    # lr 3e-5: at the paper's rates Adam's first, sign-like step overshoots from the upstream
    # initialisation, whose outputs are large (the loss rises, then falls from the third step on).
    torch.manual_seed(0)
    model = mg.build(cfg, num_joints).train()
    x = torch.randn(64, num_joints, 2) * 0.3
    y = torch.randn(64, num_joints, 3) * 0.2
    opt = torch.optim.Adam(model.parameters(), lr=3e-5, amsgrad=cfg.non_local)

    def loss():
        torch.manual_seed(1)  # the same dropout masks before and after the step
        out = model(x)
        return 0.9 * F.mse_loss(out, y) + 0.1 * F.l1_loss(out, y)

    before = loss()
    opt.zero_grad()
    before.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < 0.9 * before.item()
