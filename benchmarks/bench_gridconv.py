"""GridConv speed on the CPU: our shifted-GEMM D-GridConv against an unfold-based reference.

Usage::

    .venv/bin/python benchmarks/bench_gridconv.py --threads 2 --batch 200 --steps 10

Both implementations run the paper configuration (handcrafted SGT, 2 blocks, 256 channels,
padding ``c,r`` unless ``--padding`` says otherwise) with the *same* parameters:

* ``shifted-gemm``: ``lifting.models.gridconv`` as built by ``build`` (cells-major activations,
  row-gather + batched GEMMs, shared-source taps merged into one product with ``W1 + W2``).
* ``unfold-ref``: the upstream formulation, written here: NCHW activations, each branch pads its
  grid with ``F.pad``, ``F.unfold`` extracts every 3x3 patch, the patches are scaled by the
  attention and multiplied by the flattened kernel; BatchNorm2d / Dropout2d on NCHW.

Training = forward + grid-MSE loss + backward + Adam step at ``--batch``; inference = eval-mode
forward under ``torch.inference_mode``. Each measurement is ``--steps`` steps after
``--warmup`` steps, repeated ``--rounds`` times with the implementations interleaved (so a
noisy machine hurts both alike); the table shows the best round and the median. GFLOP/s counts
the dense two-branch convolution FLOPs (2 x 9 x 25 x Cin x Cout x 2 per sample and layer,
x3 for training), i.e. the work the unfold reference does; the shifted-GEMM model does less
(merged taps), so its figure is an *effective* rate. ``matmul`` is a large fp32 GEMM for scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from lifting.models import gridconv as gc

TORCH_PAD = {"c": "circular", "z": "constant", "r": "replicate"}


class UnfoldReference(torch.nn.Module):
    """The same network as ``model`` (sharing its parameters), computed the upstream way."""

    def __init__(self, model: gc.GridLiftingNet) -> None:
        super().__init__()
        self.model = model

    def _conv(self, conv: gc.TwoBranchGridConv, x: torch.Tensor) -> torch.Tensor:
        b, cin = x.shape[:2]
        att = None
        if conv.attention is not None:
            a = conv.attention
            z = a.expand(F.relu(a.norm(a.reduce(x.mean(dim=(2, 3))))))
            att = torch.sigmoid(z / self.model.temperature).view(b, 1, 9, 25)
        out = 0
        for mode, weight in zip(conv.plan.modes, (conv.weight1, conv.weight2)):
            cols = F.unfold(F.pad(x, (1, 1, 1, 1), mode=TORCH_PAD[mode]), 3)  # (B, Cin*9, 25)
            if att is not None:
                cols = (cols.view(b, cin, 9, 25) * att).view(b, cin * 9, 25)
            out = out + weight.reshape(weight.shape[0], -1) @ cols
        if conv.bias1 is not None:
            out = out + (conv.bias1 + conv.bias2).view(1, -1, 1)
        return out.view(b, -1, 5, 5)

    def _bn(self, norm: torch.nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                            self.training, norm.momentum, norm.eps)

    def forward_grid(self, joints: torch.Tensor) -> torch.Tensor:
        m, p = self.model, self.model.cfg.dropout
        fwd = m.sgt.forward_matrix
        x = (fwd @ joints).transpose(1, 2).reshape(-1, 2, 5, 5)  # (B, 2, 5, 5)
        y = F.dropout2d(F.relu(self._bn(m.norm1, self._conv(m.w1, x))), p, self.training)
        for i in range(0, len(m.convs), 2):
            h = F.dropout2d(F.relu(self._bn(m.norms[i], self._conv(m.convs[i], y))), p,
                            self.training)
            h = F.dropout2d(F.relu(self._bn(m.norms[i + 1], self._conv(m.convs[i + 1], h))), p,
                            self.training)
            y = y + h
        return self._conv(m.w2, y).flatten(2).transpose(1, 2)  # (B, 25, 3)

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        return self.model.sgt.inverse_matrix @ self.forward_grid(joints)

    def training_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.forward_grid(inputs), self.model.grid_targets(targets))


def dense_flops_per_sample(cfg: gc.Config) -> float:
    layers = [(2, cfg.hidden)] + [(cfg.hidden, cfg.hidden)] * (2 * cfg.num_blocks) + [
        (cfg.hidden, 3)]
    return sum(2 * 2 * 9 * 25 * cin * cout for cin, cout in layers)


def matmul_gflops(seconds: float = 1.0, dtype: torch.dtype = torch.float32) -> float:
    """A large GEMM's rate (GFLOP/s) in ``dtype`` on the current threads: the machine's peak for scale."""
    a, b = torch.randn(4096, 1024).to(dtype), torch.randn(1024, 1024).to(dtype)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return n * 2 * 4096 * 1024 * 1024 / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--padding", default="cr", help="GridConv padding, e.g. cr, cz, c")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = gc.Config(padding=args.padding)
    ours = gc.build(cfg, 17)
    ours.set_epoch_progress(0.5)
    reference = UnfoldReference(ours)
    x = torch.rand(args.batch, 17, 2) * 2 - 1
    y = torch.randn(args.batch, 17, 3) * 0.2
    with torch.inference_mode():
        ours.eval(), reference.eval()
        diff = (ours(x) - reference(x)).abs().max().item()
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"padding {cfg.padding}, {sum(p.numel() for p in ours.parameters()):,} parameters, "
          f"max |ours - reference| = {diff:.1e} m")

    optimizer = torch.optim.Adam(ours.parameters(), lr=1e-4)

    def train_steps(model: torch.nn.Module, n: int) -> None:
        model.train()
        for _ in range(n):
            loss = model.loss(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def infer_steps(model: torch.nn.Module, n: int) -> None:
        model.eval()
        with torch.inference_mode():
            for _ in range(n):
                model(x)

    impls = {"shifted-gemm": ours, "unfold-ref": reference}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for mode, fn in (("train", train_steps), ("infer", infer_steps)):
            for name, model in impls.items():
                fn(model, args.warmup)
                start = time.perf_counter()
                fn(model, args.steps)
                times.setdefault((name, mode), []).append(time.perf_counter() - start)
    peak = matmul_gflops()

    flops = dense_flops_per_sample(cfg)
    rows = []
    print(f"\n{'implementation':14s} {'mode':6s} {'samples/s best':>15s} {'median':>8s} "
          f"{'ms/step':>8s} {'GFLOP/s':>8s} {'vs ref':>7s}")
    for mode in ("train", "infer"):
        for name in impls:
            ts = times[(name, mode)]
            best = args.steps * args.batch / min(ts)
            median = args.steps * args.batch / statistics.median(ts)
            ref_best = args.steps * args.batch / min(times[("unfold-ref", mode)])
            gflops = best * flops * (3 if mode == "train" else 1) / 1e9
            rows.append({"implementation": name, "mode": mode, "samples_per_s": round(best, 1),
                         "samples_per_s_median": round(median, 1),
                         "ms_per_step": round(1e3 * min(ts) / args.steps, 1),
                         "dense_gflops": round(gflops, 1),
                         "speedup_vs_ref": round(best / ref_best, 2)})
            r = rows[-1]
            print(f"{name:14s} {mode:6s} {r['samples_per_s']:15.1f} "
                  f"{r['samples_per_s_median']:8.1f} {r['ms_per_step']:8.1f} "
                  f"{r['dense_gflops']:8.1f} {r['speedup_vs_ref']:6.2f}x")
    print(f"\nlarge fp32 matmul: {peak:.0f} GFLOP/s; dense FLOPs per sample: {flops / 1e6:.0f} M "
          f"forward, {3 * flops / 1e6:.0f} M training; shifted-gemm computes "
          f"{ours.w1.plan.rows}/450 of the dense tap-cell products")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": args.batch, "steps": args.steps,
                       "rounds": args.rounds, "padding": list(cfg.padding),
                       "torch": torch.__version__, "matmul_gflops": round(peak, 1),
                       "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
