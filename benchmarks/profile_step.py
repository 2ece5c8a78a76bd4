"""Top operators of one method's training step in our loop (torch.profiler, CPU), for the speed notes.

Usage (repository root, venv active, after `dvc repro align`)::

    python -m benchmarks.profile_step --method semgcn [--batch 64] [--steps 20] [--top 8]

Times ``--steps`` training steps of the paper's configuration on ground-truth 2D (after two
warm-up steps), as :func:`lifting.train.fit` computes them, and prints the operators with the
most self CPU time: where a method's step goes, e.g. why it cannot gain more from the data path.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from lifting import train
from lifting.codec import Codec
from lifting.data.split import Protocol, load_split
from lifting.data.sequences import SequenceIndex
from lifting.models import METHOD_NAMES, method_module
from lifting.runner import build_model, method_config, paper_schedule, receptive_field


def main(argv=None) -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--method", required=True, choices=sorted(m for m in METHOD_NAMES if m != "knn"))
    cli.add_argument("--batch", type=int, help="default: the paper's")
    cli.add_argument("--steps", type=int, default=20)
    cli.add_argument("--top", type=int, default=8)
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument("--aligned", default="data/aligned")
    args = cli.parse_args(argv)
    torch.set_num_threads(args.threads)
    setup = method_module(args.method).PAPER["gt"]
    cfg = method_config(args.method, {}, None, "gt")
    data = load_split(args.aligned, "gt", setup.input_spec.joint_set, Protocol(), markers=setup.input_spec.markers)
    schedule = paper_schedule(args.method, cfg, setup.schedule)
    batch = args.batch or schedule.batch_size
    codec = Codec(setup.input_spec, data.input_mean, data.input_std, data.target_mean, data.target_std)
    model = build_model(args.method, cfg, data.train_inputs.shape[1], data.surface)
    optimizer = train.make_optimizer(model, schedule)
    pool, targets = torch.as_tensor(data.train_inputs), torch.as_tensor(data.train_targets)
    markers = None if data.train_markers is None else torch.as_tensor(data.train_markers)
    field = receptive_field(cfg, setup.input_spec)
    windows = torch.as_tensor(SequenceIndex.from_meta(data.train_meta).window_rows(np.arange(len(pool)), field)) \
        if field > 1 else None
    model.train()

    def step() -> None:
        index = torch.randint(len(targets), (batch,))
        inputs = codec.encode_inputs(pool[windows[index]] if windows is not None else pool[index])
        goal = codec.encode_targets(targets[index])
        aux = codec.encode_targets(markers[index]) if markers is not None else None
        loss = model.loss(inputs, goal, schedule, aux_targets=aux)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            step()
    print(f"{args.method}, batch {batch}, {args.steps} steps, {args.threads} threads")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
