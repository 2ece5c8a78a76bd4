"""GridConv: paper parameter counts, SGT tables, the shifted-GEMM convolution against conv2d,
the learnable SGT's gradient, the temperature schedule, shapes and one training step."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from lifting import train
from lifting.models import gridconv as gc
from lifting.models.base import Lifter

TORCH_PAD = {"c": "circular", "z": "constant", "r": "replicate"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this module single-threaded: these small models issue many tiny ops, and on a busy
    2-core machine every OpenMP barrier between them can wait for a descheduled thread (seen
    here: the same tests took 2 s with one thread and 60 s with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _to_cells(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 5, 5) -> cells-major (25, B, C)."""
    return x.flatten(2).permute(2, 0, 1).contiguous()


def _reference_conv(x, w1, w2, bias, modes, attention=None):
    """Upstream-style two-branch conv on NCHW: F.pad + unfold, attention on every patch tap.

    With ``attention=None`` it is F.pad + F.conv2d per branch, summed.
    """
    out = 0
    for mode, w in zip(modes, (w1, w2)):
        padded = F.pad(x, (1, 1, 1, 1), mode=TORCH_PAD[mode])
        if attention is None:
            out = out + F.conv2d(padded, w)
        else:
            b, cin = x.shape[:2]
            cols = F.unfold(padded, 3).view(b, cin, 9, 25) * attention.unsqueeze(1)
            out = out + (w.reshape(w.shape[0], -1) @ cols.reshape(b, cin * 9, 25)).view(
                b, -1, 5, 5)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


# ---------------------------------------------------------------------------------------------
# Paper configuration


def test_paper_configurations_have_the_computed_parameter_counts():
    # methods.md §2.2 [computed]: D-GridConv 4.79M, learnable SGT +425 (25 x 17), plain 4.75M.
    # Per two-branch conv 256->256: 2 * (256*256*9 + 256) kernels + attention
    # 256*16 (no bias) + BN 2*16 + 16*225 + 225 = 1,180,160 + 7,953.
    assert _num_params(gc.build(gc.Config(), 17)) == 4_790_406
    assert _num_params(gc.build(gc.Config(sgt="learnable"), 17)) == 4_790_831
    assert _num_params(gc.build(gc.Config(dynamic=False), 17)) == 4_746_752
    # The padding modes change no parameter.
    assert _num_params(gc.build(gc.Config(padding="z"), 17)) == 4_790_406


def test_schedule_input_spec_and_defaults():
    s = gc.PAPER_SCHEDULE
    assert (s.optimizer, s.lr, s.lr_decay, s.lr_decay_every, s.lr_decay_unit) == (
        "adam", 1e-3, 0.96, 10, "epoch")
    assert (s.batch_size, s.epochs, s.loss, s.grad_clip) == (200, 100, "mse", None)
    # Upstream steps StepLR(gamma=0.96) after epochs 1, 11, 21, ... (epoch % 10 == 0, 0-based).
    lr_after = [train.learning_rate(s, step=0, epoch=done) for done in (0, 1, 10, 11, 21, 99)]
    assert lr_after == pytest.approx([1e-3 * 0.96**n for n in (0, 1, 1, 2, 3, 10)])
    spec = gc.INPUT_SPEC
    assert (spec.joint_set, spec.input_norm, spec.target, spec.flip_test) == (
        "h36m17", "screen", "metres", False)
    cfg = gc.Config()
    assert (cfg.padding, cfg.sgt, cfg.dynamic, cfg.hidden, cfg.num_blocks, cfg.dropout,
            cfg.grid) == (("c", "r"), "handcrafted", True, 256, 2, 0.25, 5)


@pytest.mark.parametrize("given, expected", [
    ("c", ("c", "c")), ("z", ("z", "z")), ("cr", ("c", "r")), (["c", "z"], ("c", "z")),
    (("r",), ("r", "r")), (("circular", "replicate"), ("c", "r")), ("zeros", ("z", "z")),
])
def test_padding_is_normalised(given, expected):
    assert gc.Config(padding=given).padding == expected


@pytest.mark.parametrize("bad", ["x", "reflect", ("c", "q"), ("c", "r", "z"), "crz", ()])
def test_unknown_padding_names_the_valid_modes(bad):
    with pytest.raises(ValueError, match="valid modes are 'c' \\(circular\\), 'z' \\(zeros\\), "
                                         "'r' \\(replicate\\)"):
        gc.Config(padding=bad)


def test_other_config_errors():
    with pytest.raises(ValueError, match="grid must be 5"):
        gc.Config(grid=7)
    with pytest.raises(ValueError, match="sgt"):
        gc.Config(sgt="auto")
    with pytest.raises(ValueError, match="dropout"):
        gc.Config(dropout=1.0)
    with pytest.raises(ValueError, match="17-joint"):
        gc.build(gc.Config(), 16)


# ---------------------------------------------------------------------------------------------
# Semantic grid transformations


def test_handcrafted_sgt_table_and_exact_round_trip():
    fwd, inv = gc.handcrafted_sgt_matrices()
    assert fwd.shape == (25, 17) and inv.shape == (17, 25)
    assert torch.equal(fwd.sum(1), torch.ones(25))
    midpoint = 2 * 5 + 2
    assert fwd[midpoint, 8] == fwd[midpoint, 9] == 0.5
    assert inv[:, midpoint].abs().sum() == 0  # (2, 2) is discarded by the inverse
    assert torch.allclose(inv[7, :5], torch.full((5,), 0.2))  # spine = mean of row 0
    assert inv[0, 5] == inv[0, 9] == 0.5  # pelvis = mean of (1, 0), (1, 4)
    assert torch.allclose(inv[8, 6:9], torch.full((3,), 1 / 3))  # thorax = mean of (1, 1)-(1, 3)
    assert torch.allclose(inv @ fwd, torch.eye(17), atol=1e-7)

    sgt = gc.HandcraftedSGT()
    x = torch.randn(6, 17, 3)
    grid = sgt.to_grid(x)
    assert grid.shape == (25, 6, 3)
    assert torch.allclose(grid[midpoint], 0.5 * (x[:, 8] + x[:, 9]))
    assert torch.allclose(grid[3 * 5 + 1], x[:, 15])  # (3, 1) = right elbow
    assert torch.allclose(sgt.from_grid(grid), x, atol=1e-6)


def test_standard_prior_is_the_mirrored_handcrafted_grid():
    # Columns reversed (left limbs in column 0), joint 9 instead of the midpoint in (2, 2).
    for r, (hand, prior) in enumerate(zip(gc.HANDCRAFTED_GRID, gc.STANDARD_PRIOR)):
        expected = [9 if (r, c) == (2, 2) else h for c, h in enumerate(hand[::-1])]
        assert list(prior) == expected


@pytest.mark.parametrize("training", [True, False])
def test_learnable_sgt_with_the_standard_prior_round_trips(training):
    sgt = gc.LearnableSGT().train(training)
    assert sgt.assignment().tolist() == [list(row) for row in gc.STANDARD_PRIOR]
    x = torch.randn(5, 17, 2)
    grid = sgt.to_grid(x)
    assert torch.allclose(grid[2 * 5 + 2], x[:, 9])
    assert torch.allclose(sgt.from_grid(grid), x, atol=1e-6)


def test_learnable_sgt_logits_receive_gradient_in_training_mode():
    # Upstream's training step ran the argmax one-hot without a gradient path, so the
    # "learnable" SGT never left its prior. That must not come back.
    torch.manual_seed(0)
    model = gc.build(gc.Config(sgt="learnable", hidden=32), 17).train()
    assert type(model).loss is Lifter.loss  # loss on the 17 joints, the loop's default
    x, y = torch.randn(8, 17, 2), torch.randn(8, 17, 3)
    F.mse_loss(model(x), y).backward()
    grad = model.sgt.logits.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    assert (grad.abs().sum(1) > 0).sum() >= 20  # most cells' rows get a gradient


def test_learnable_sgt_gradient_is_passed_straight_to_the_raw_matrix():
    # Upstream's is_training=True path: d(one-hot)/d(logits) is the identity, no softmax Jacobian.
    torch.manual_seed(0)
    sgt = gc.LearnableSGT().train()
    x = torch.randn(4, 17, 3)
    upstream = torch.randn(25, 4, 3)
    (sgt.to_grid(x) * upstream).sum().backward()
    # to_grid = S @ x per sample, so dL/dS[g, j] = sum_b,c upstream[g, b, c] * x[b, j, c] exactly.
    expected = torch.einsum("gbc,bjc->gj", upstream, x)
    assert torch.allclose(sgt.logits.grad, expected, atol=1e-5)


def test_learnable_sgt_inverse_gradient_flows_through_the_cell_counts_as_upstreams():
    """Upstream's inverse divides by the column sums of the straight-through matrix (plus 1e-8),
    so the logits' gradient has a term through each joint's count: re-stated here, it must match."""
    torch.manual_seed(0)
    sgt = gc.LearnableSGT().train()
    grid, weights = torch.randn(25, 4, 3), torch.randn(4, 17, 3)
    (sgt.from_grid(grid) * weights).sum().backward()
    logits = sgt.logits.detach().clone().requires_grad_(True)
    straight = F.one_hot(logits.argmax(dim=1), 17).float() + (logits - logits.detach())
    joints = torch.einsum("gj,gbc->bjc", straight, grid) / (straight.sum(0) + 1e-8)[None, :, None]
    (joints * weights).sum().backward()
    assert torch.allclose(sgt.logits.grad, logits.grad, atol=1e-5)
    detached = torch.einsum("gj,gbc->bjc", straight, grid) / straight.sum(0).detach()[None, :, None]
    logits.grad = None
    (detached * weights).sum().backward()
    assert not torch.allclose(sgt.logits.grad, logits.grad, atol=1e-2)  # the count term is not negligible


def test_released_script_option_leaves_the_learnable_sgt_at_its_prior():
    model = gc.build(gc.Config(sgt="learnable", hidden=32, sgt_gradient="none"), 17).train()
    F.mse_loss(model(torch.randn(8, 17, 2)), torch.randn(8, 17, 3)).backward()
    assert model.sgt.logits.grad is None


def test_learnable_sgt_assignment_moves_under_optimisation():
    # A target that needs cell (4, 2) to hold the nose (9) instead of the head (10).
    torch.manual_seed(0)
    sgt = gc.LearnableSGT().train()
    x = torch.randn(64, 17, 1)
    target = sgt.to_grid(x).detach().clone()
    target[4 * 5 + 2] = x[:, 9].detach()
    opt = torch.optim.Adam(sgt.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        F.mse_loss(sgt.to_grid(x), target).backward()
        opt.step()
    expected = [list(row) for row in gc.STANDARD_PRIOR]
    expected[4][2] = 9
    assert sgt.assignment().tolist() == expected


def test_learnable_sgt_joint_without_a_cell_is_read_as_the_origin():
    sgt = gc.LearnableSGT().eval()
    with torch.no_grad():
        sgt.logits[4 * 5 + 0, 6] = -1.0  # the only cell of joint 6 (LFoot) now holds ...
        sgt.logits[4 * 5 + 0, 3] = 2.0  # ... joint 3 (RFoot)
    x = torch.randn(4, 17, 3)
    out = sgt.from_grid(sgt.to_grid(x))
    assert torch.isfinite(out).all()
    assert torch.equal(out[:, 6], torch.zeros(4, 3))
    assert torch.allclose(out[:, 3], x[:, 3], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The shifted-GEMM two-branch convolution


METHODS = ["segments", "gather"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("modes", list(itertools.product("czr", repeat=2)))
def test_shifted_conv_matches_pad_and_conv2d(modes, method):
    torch.manual_seed(1)
    conv = gc.TwoBranchGridConv(4, 5, modes, dynamic=False).double()
    conv.method = method
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    ref = _reference_conv(x, conv.weight1, conv.weight2, conv.bias1 + conv.bias2, modes)
    x_cells = _to_cells(x.detach()).requires_grad_()
    out = conv(x_cells)
    assert torch.allclose(out, _to_cells(ref.detach()), atol=1e-10)
    grad_out = torch.randn_like(ref)
    params = (conv.weight1, conv.weight2, conv.bias1, conv.bias2)
    ref_grads = torch.autograd.grad(ref, (x, *params), grad_out)
    grads = torch.autograd.grad(out, (x_cells, *params), _to_cells(grad_out))
    assert torch.allclose(grads[0], _to_cells(ref_grads[0]), atol=1e-10)
    for g, r in zip(grads[1:], ref_grads[1:]):
        assert torch.allclose(g, r, atol=1e-10)
    # All-ones attention is the plain convolution.
    ones = torch.ones(225, 3, 1, dtype=torch.float64)
    out_att = gc.shifted_grid_conv(_to_cells(x.detach()), conv.weight1, conv.weight2,
                                   conv.bias1 + conv.bias2, conv.plan, ones, method)
    assert torch.allclose(out_att, _to_cells(ref.detach()), atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("modes", [("c", "r"), ("c", "z"), ("r", "r"), ("z", "c")])
@pytest.mark.parametrize("cin, cout", [(2, 6), (6, 3), (5, 5)])
def test_shifted_conv_with_attention_matches_unfold_reference_and_its_gradients(
        modes, cin, cout, method):
    torch.manual_seed(2)
    conv = gc.TwoBranchGridConv(cin, cout, modes, dynamic=True).double()
    x = torch.randn(3, cin, 5, 5, dtype=torch.float64, requires_grad=True)
    att = torch.rand(3, 9, 25, dtype=torch.float64, requires_grad=True)
    bias = conv.bias1 + conv.bias2
    ref = _reference_conv(x, conv.weight1, conv.weight2, bias, modes, att)
    # The unfold reference itself, against conv2d: one conv per tap (the other 8 taps zeroed),
    # scaled by that tap's attention map.
    per_tap = bias.view(1, -1, 1, 1)
    for k in range(9):
        mask = torch.zeros(9, dtype=torch.float64)
        mask[k] = 1
        tap = _reference_conv(x, conv.weight1 * mask.view(3, 3), conv.weight2 * mask.view(3, 3),
                              None, modes)
        per_tap = per_tap + tap * att[:, k].view(3, 1, 5, 5)
    assert torch.allclose(ref, per_tap, atol=1e-10)
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, (x, att, conv.weight1, conv.weight2, conv.bias1),
                                    grad_out)
    x_cells = _to_cells(x.detach()).requires_grad_()
    att_rows = att.detach().permute(1, 2, 0).reshape(225, 3, 1).requires_grad_()
    out = gc.shifted_grid_conv(x_cells, conv.weight1, conv.weight2, bias, conv.plan, att_rows,
                               method)
    assert torch.allclose(out, _to_cells(ref.detach()), atol=1e-10)
    grads = torch.autograd.grad(out, (x_cells, att_rows, conv.weight1, conv.weight2, conv.bias1),
                                _to_cells(grad_out))
    assert torch.allclose(grads[0], _to_cells(ref_grads[0]), atol=1e-10)
    assert torch.allclose(grads[1], ref_grads[1].permute(1, 2, 0).reshape(225, 3, 1), atol=1e-10)
    for g, r in zip(grads[2:], ref_grads[2:]):
        assert torch.allclose(g, r, atol=1e-10)


def test_padding_modes_give_different_outputs():
    torch.manual_seed(3)
    x = _to_cells(torch.randn(2, 4, 5, 5))
    outputs = {}
    for modes in itertools.product("czr", repeat=2):
        torch.manual_seed(4)  # same weights for every mode pair
        outputs[modes] = gc.TwoBranchGridConv(4, 6, modes, dynamic=True)(x)
    for a, b in itertools.combinations(outputs, 2):
        assert not torch.allclose(outputs[a], outputs[b], atol=1e-4), (a, b)


def test_shift_plan_merges_shared_sources():
    # Inside the grid both branches read the same cell: one product with W1 + W2.
    assert gc.ShiftPlan(("c", "r")).rows == 169 + 2 * 56
    assert gc.ShiftPlan(("c", "z")).rows == 169 + 56
    assert gc.ShiftPlan(("z", "z")).rows == 169
    assert gc.ShiftPlan(("r", "r")).rows == 225  # identical modes: one convolution
    plan = gc.ShiftPlan(("c", "r"))
    assert sum(seg[4] for seg in plan.segments) == plan.rows == len(plan.source)
    assert sum(n * g for n, g in plan.groups) == plan.rows


def test_segments_and_gather_agree_in_float32_and_under_autocast():
    torch.manual_seed(12)
    conv = gc.TwoBranchGridConv(16, 8, ("c", "r"))
    x = torch.randn(25, 6, 16)
    seg = conv(x)
    conv.method = "gather"
    assert torch.allclose(seg, conv(x), atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for method in METHODS:
            conv.method = method
            out = conv(x)
            assert out.dtype == torch.float32
            assert torch.allclose(out, seg, atol=0.1, rtol=0.05)


def test_attention_shape_range_and_temperature():
    torch.manual_seed(5)
    attention = gc.GridAttention(32)
    assert attention.reduce.out_features == 16 and attention.expand.out_features == 225
    x = torch.randn(25, 4, 32)
    hot, cold = attention(x, 30.0), attention(x, 1.0)
    assert hot.shape == (225, 4, 1)
    assert ((hot > 0) & (hot < 1)).all()
    assert (hot - 0.5).abs().max() < (cold - 0.5).abs().max()  # high T flattens towards 0.5


def test_norm_and_channel_dropout_match_their_2d_counterparts():
    torch.manual_seed(6)
    x = torch.randn(4, 8, 5, 5)
    norm, ref = gc._Norm(8).train(), torch.nn.BatchNorm2d(8).train()
    assert torch.allclose(norm(_to_cells(x)), _to_cells(ref(x)), atol=1e-5)
    assert torch.allclose(norm.running_var, ref.running_var)
    y = gc._channel_dropout(torch.ones(25, 64, 16), 0.25, training=True)
    per_channel = y.amax(0)
    assert torch.equal(y.amin(0), per_channel)  # whole channel maps kept or dropped
    kept = per_channel[per_channel != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.75))
    assert 0.1 < (per_channel == 0).float().mean() < 0.4
    assert torch.equal(gc._channel_dropout(y, 0.25, training=False), y)


# ---------------------------------------------------------------------------------------------
# Temperature, shapes, loss, a training step


def test_temperature_schedule():
    assert gc.temperature_at(0) == 30.0
    assert gc.temperature_at(5) == 15.5
    assert gc.temperature_at(2.5) == 22.75
    assert gc.temperature_at(10) == 1.0
    assert gc.temperature_at(57.3) == 1.0
    assert gc.temperature_at(-1) == 30.0
    model = gc.build(gc.Config(hidden=16), 17)
    assert model.temperature.item() == 30.0  # a fresh model is at epoch 0
    assert model.set_epoch_progress(5.0) == 15.5
    assert model.state_dict()["temperature"].item() == 15.5  # saved with the checkpoint
    restored = gc.build(gc.Config(hidden=16), 17)
    restored.load_state_dict(model.state_dict())
    assert restored.temperature.item() == 15.5


def test_temperature_changes_dynamic_outputs_only():
    torch.manual_seed(7)
    x = torch.randn(4, 17, 2)
    for dynamic in (True, False):
        model = gc.build(gc.Config(hidden=16, dynamic=dynamic), 17).eval()
        a = model(x)
        model.set_epoch_progress(10)
        b = model(x)
        assert torch.allclose(a, b) is (not dynamic)


@pytest.mark.parametrize("cfg", [
    gc.Config(hidden=32), gc.Config(hidden=32, sgt="learnable"),
    gc.Config(hidden=32, dynamic=False), gc.Config(hidden=32, padding="z", num_blocks=0),
])
def test_forward_shapes(cfg):
    torch.manual_seed(8)
    model = gc.build(cfg, 17)
    x = torch.randn(4, 17, 2)
    out = model(x)
    assert out.shape == (4, 17, 3) and torch.isfinite(out).all()
    assert model.forward_grid(x).shape == (4, 25, 3)
    model.eval()
    assert model(torch.randn(1, 17, 2)).shape == (1, 17, 3)
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        model(torch.randn(4, 16, 2))


def test_handcrafted_training_loss_is_the_mse_on_the_grid():
    torch.manual_seed(9)
    model = gc.build(gc.Config(hidden=32), 17).eval()
    x, y = torch.randn(4, 17, 2), torch.randn(4, 17, 3)
    grid_y = model.grid_targets(y)
    assert grid_y.shape == (4, 25, 3)
    assert torch.allclose(grid_y[:, 12], 0.5 * (y[:, 8] + y[:, 9]))
    expected = ((model.forward_grid(x) - grid_y) ** 2).mean()
    assert torch.allclose(model.loss(x, y), expected)
    # forward() reads the joints back from the same grid prediction.
    assert torch.allclose(model(x), model.sgt.from_grid(model.forward_grid(x).transpose(0, 1)),
                          atol=1e-6)


@pytest.mark.parametrize("sgt", ["handcrafted", "learnable"])
def test_one_adam_step_lowers_the_loss(sgt):
    # The paper configuration (dropout included). lr 1e-4: from a cold start the first Adam
    # step moves every weight by ~lr in the sign of its gradient, and at the paper's 1e-3 that
    # sign step overshoots on a single small batch (the loss recovers within tens of steps).
    torch.manual_seed(10)
    model = gc.build(gc.Config(sgt=sgt), 17).train()
    model.set_epoch_progress(0.0)
    x = torch.rand(32, 17, 2) * 2 - 1
    y = torch.randn(32, 17, 3) * 0.2

    def loss() -> torch.Tensor:
        torch.manual_seed(11)  # the same dropout masks before and after the step
        return model.loss(x, y, gc.PAPER["gt"].schedule)  # the grid cells' MSE or the default on the joints

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after < 0.9 * before
