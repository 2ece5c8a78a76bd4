"""SemGCN: paper parameter counts, output contract, semantic softmax, reference maths, a step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lifting.models import graph
from lifting.models import semgcn as sg
from lifting.skeleton import H36M16, H36M17, JointSet

CHAIN3 = JointSet(name="chain3", names=("a", "b", "c"), parents=(-1, 0, 1), left=(), right=())


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_configurations_have_the_published_parameter_counts():
    # README: 0.27M plain, 0.43M with non-local (16 joints); exact counts from the layer shapes.
    assert _num_params(sg.build(sg.Config(), 16)) == 267_343
    assert _num_params(sg.build(sg.NON_LOCAL, 16)) == 434_703
    # 17 joints: two more edges (nose-thorax, nose-head) plus the nose's self loop = 3 more
    # edge weights in each of the 10 graph convolutions.
    assert _num_params(sg.build(sg.Config(), 17)) == 267_343 + 10 * 3
    assert _num_params(sg.build(sg.NON_LOCAL, 17)) == 434_703 + 10 * 3


def test_schedules_and_input_spec():
    s = sg.PAPER_SCHEDULE
    assert (s.optimizer, s.lr, s.lr_decay, s.lr_decay_every, s.lr_decay_unit) == (
        "adam", 1e-3, 0.96, 100_000, "step")
    assert (s.batch_size, s.epochs, s.loss, s.l1_weight, s.grad_clip) == (64, 50, "mse", 0.0, 1.0)
    assert sg.NON_LOCAL_SCHEDULE.epochs == 30
    assert sg.Config().non_local is False and sg.NON_LOCAL.non_local is True
    spec = sg.INPUT_SPEC
    assert (spec.joint_set, spec.input_norm, spec.target, spec.flip_test) == (
        "h36m16", "screen", "metres", False)


@pytest.mark.parametrize("num_joints", [16, 17])
@pytest.mark.parametrize("non_local", [False, True])
def test_forward_shapes(num_joints, non_local):
    torch.manual_seed(0)
    model = sg.build(sg.Config(hidden=32, non_local=non_local), num_joints)
    out = model(torch.randn(4, num_joints, 2))
    assert out.shape == (4, num_joints, 3)
    assert torch.isfinite(out).all()
    model.eval()
    assert model(torch.randn(1, num_joints, 2)).shape == (1, num_joints, 3)
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(4, num_joints + 1, 2))


def test_joint_groups():
    for j, groups in sg.JOINT_GROUPS.items():
        assert sorted(k for g in groups for k in g) == list(range(j))
    # The 17-joint groups are the 16-joint ones with indices shifted past the nose, plus the nose.
    nose = H36M17.index("Nose")
    to16 = {k: k - (k > nose) for k in range(17) if k != nose}
    mapped = tuple(tuple(to16[k] for k in g if k != nose) for g in sg.JOINT_GROUPS_17)
    assert mapped == sg.JOINT_GROUPS_16
    # Each 16-joint group is a semantic pair (names are the same after the shift).
    named16 = [tuple(H36M16.names[k] for k in g) for g in sg.JOINT_GROUPS_16]
    assert ("Thorax", "Head") in named16 and ("LShoulder", "RShoulder") in named16


def _layers(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


def test_softmax_rows_sum_to_one_over_each_neighbourhood():
    torch.manual_seed(0)
    model = sg.build(sg.NON_LOCAL, 16)
    mask = graph.semgcn_adjacency(H36M16) > 0
    convs = _layers(model, sg.SemGraphConv)
    assert len(convs) == 10
    for conv in convs:
        with torch.no_grad():
            conv.e.normal_(0.0, 2.0)  # away from the uniform initialisation
        a = conv.attention()
        torch.testing.assert_close(a.sum(1), torch.ones(16))
        assert (a[mask] > 0).all()
        assert (a[~mask] == 0).all()


def test_initial_attention_is_uniform_over_the_closed_neighbourhood():
    conv = sg.SemGraphConv(4, 4, graph.semgcn_adjacency(CHAIN3))
    torch.testing.assert_close(conv.attention(), graph.semgcn_adjacency(CHAIN3))


def test_sem_graph_conv_known_answer_on_a_chain():
    conv = sg.SemGraphConv(1, 1, graph.semgcn_adjacency(CHAIN3))
    with torch.no_grad():
        conv.W[0].fill_(2.0)  # self
        conv.W[1].fill_(1.0)  # neighbours
        conv.bias.zero_()
    x = torch.tensor([1.0, 10.0, 100.0]).view(3, 1, 1)  # (J, B, C)
    out = conv(x).flatten()
    expected = torch.tensor([
        0.5 * 2 * 1 + 0.5 * 10,
        (2 * 10 + 1 + 100) / 3,
        0.5 * 10 + 0.5 * 2 * 100,
    ])
    torch.testing.assert_close(out, expected)


def _reference_sem_graph_conv(conv: sg.SemGraphConv, adj: torch.Tensor, x: torch.Tensor):
    """Per-joint loop over (B, J, C), straight from the definition."""
    mask = adj > 0
    logits = torch.full_like(adj, -9e15)
    logits[mask] = conv.e
    a = torch.softmax(logits, dim=1)
    j = adj.shape[0]
    rows = []
    for i in range(j):
        acc = a[i, i] * x[:, i] @ conv.W[0] + conv.bias
        for k in range(j):
            if k != i:
                acc = acc + a[i, k] * x[:, k] @ conv.W[1]
        rows.append(acc)
    return torch.stack(rows, dim=1)


def test_sem_graph_conv_matches_the_definition():
    torch.manual_seed(0)
    adj = graph.semgcn_adjacency(H36M17)
    conv = sg.SemGraphConv(5, 7, adj)
    with torch.no_grad():
        conv.e.normal_()
    x = torch.randn(3, 17, 5)
    out = graph.to_batch_major(conv(graph.to_joint_major(x)))
    torch.testing.assert_close(out, _reference_sem_graph_conv(conv, adj, x))


def _reference_group_non_local(block: sg.GroupNonLocal, groups, x: torch.Tensor):
    """SemGCN's formulation on (B, J, C): re-order joints group by group, max-pool keys and
    values with a window of the group size, concatenation attention, restore the order."""
    order = [k for g in groups for k in g]
    restore = [order.index(k) for k in range(len(order))]
    size = len(groups[0])
    xs = x[:, order].transpose(1, 2)  # (B, C, J)

    def conv(lin, t):
        return torch.einsum("oc,bcj->boj", lin.weight, t) + lin.bias[None, :, None]

    g_x = F.max_pool1d(conv(block.g, xs), size).transpose(1, 2)  # (B, G, C')
    theta = conv(block.theta, xs)  # (B, C', J)
    phi = F.max_pool1d(conv(block.phi, xs), size)  # (B, C', G)
    nj, ng = theta.shape[2], phi.shape[2]
    cat = torch.cat([theta[..., None].expand(-1, -1, nj, ng), phi[:, :, None].expand(-1, -1, nj, ng)], 1)
    f = F.relu(torch.einsum("c,bcjg->bjg", block.concat_project.weight[0], cat)) / ng
    y = f @ g_x  # (B, J, C')
    w_y = conv(block.W_z, y.transpose(1, 2))  # (B, C, J)
    w_y = block.bn(w_y)
    return (xs + w_y).transpose(1, 2)[:, restore]


def test_group_non_local_matches_the_reordered_max_pool_formulation():
    torch.manual_seed(0)
    block = sg.GroupNonLocal(8, sg.JOINT_GROUPS_16).eval()
    with torch.no_grad():  # make the residual branch visible (it starts at exactly 0)
        block.bn.weight.normal_()
        block.bn.bias.normal_()
    x = torch.randn(3, 16, 8)
    out = graph.to_batch_major(block(graph.to_joint_major(x)))
    torch.testing.assert_close(out, _reference_group_non_local(block, sg.JOINT_GROUPS_16, x))


def test_group_non_local_starts_as_the_identity_and_handles_unequal_groups():
    torch.manual_seed(0)
    block = sg.GroupNonLocal(8, sg.JOINT_GROUPS_17)
    h = torch.randn(17, 3, 8)
    assert torch.equal(block(h), h)
    with torch.no_grad():
        block.bn.weight.fill_(1.0)
    block.eval()
    out = block(h)
    assert not torch.allclose(out, h)
    # The triple (thorax, nose, head) pools to the max of its three members.
    keys = block.phi(h.view(-1, 8)).view(17, 3, 4)
    torch.testing.assert_close(block._pool(keys)[4], keys[[8, 9, 10]].amax(0))
    torch.testing.assert_close(block._pool(keys)[0], keys[[2, 3]].amax(0))
    with pytest.raises(ValueError, match="exactly once"):
        sg.GroupNonLocal(8, ((0, 1), (1, 2)))


def test_edge_weights_receive_gradients():
    torch.manual_seed(0)
    model = sg.build(sg.Config(hidden=16), 16)
    out = model(torch.randn(8, 16, 2))
    out.square().mean().backward()
    for conv in _layers(model, sg.SemGraphConv):
        assert conv.e.grad is not None and conv.e.grad.abs().sum() > 0


@pytest.mark.parametrize("cfg", [sg.Config(), sg.NON_LOCAL], ids=["plain", "non_local"])
def test_one_adam_step_lowers_the_loss(cfg):
    # lr 1e-4: at the paper's 1e-3 Adam's first, sign-like step overshoots from the upstream
    # initialisation (the loss roughly triples, then falls from the third step on).
    torch.manual_seed(0)
    model = sg.build(cfg, 16).train()
    x = torch.randn(64, 16, 2) * 0.3
    y = torch.randn(64, 16, 3) * 0.2
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    before = F.mse_loss(model(x), y)
    opt.zero_grad()
    before.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        after = F.mse_loss(model(x), y)
    assert after.item() < 0.9 * before.item()
