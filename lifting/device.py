"""Where a computation runs and in which precision: the device, its threads, bf16 autocast.

Shared by the lifting loop (:mod:`lifting.train`), the detector and prediction, none of which needs
the others to pick a device.
"""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger("lifting.device")


def pick_device(threads: int, gpu: int = 0) -> torch.device:
    """CUDA (GPU number ``gpu``) when present, else the CPU with ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    return torch.device("cuda", gpu) if torch.cuda.is_available() else torch.device("cpu")


@functools.lru_cache(maxsize=1)
def fast_cpu_bf16() -> bool:
    """Whether this CPU runs bf16 at speed: oneDNN's bf16 kernels, which need AVX-512 or AMX. On an
    AVX2-only CPU bf16 autocast is emulated, measured ~60x slower than fp32 (one training step of a
    two-layer 1024-wide MLP at batch 256 on 2 threads: 1,102 against 18 ms), so a budget's
    ``bf16_cpu`` trains in fp32 there (``bf16_cpu_for``)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def bf16_cpu_for(requested: bool, what: str) -> bool:
    """``requested`` where this CPU has fast bf16 (:func:`fast_cpu_bf16`), else False with a
    warning naming ``what`` (the run, so that its record and label say fp32)."""
    if requested and not fast_cpu_bf16():
        log.warning("%s: bf16 autocast on the CPU was asked for, but this CPU has no fast bf16 (oneDNN needs "
                    "AVX-512 or AMX; emulated bf16 is ~60x slower): training in fp32, and the run's record says so",
                    what)
        return False
    return requested


def autocast(device: torch.device, bf16_cpu: bool = False):
    """bf16 autocast on CUDA always; on the CPU when asked (``bf16_cpu``) and fast (:func:`fast_cpu_bf16`)."""
    enabled = device.type == "cuda" or (bf16_cpu and fast_cpu_bf16())
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
