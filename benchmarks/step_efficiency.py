"""How close is the training step to what this machine can do? Its achieved GFLOP/s against the same machine's
measured matmul peak, in the same run.

- the step's FLOPs: one forward and backward pass of the profile's model on one batch, counted by
  `torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions; what a CPU's peak is quoted in);
- the peak: repeated square matmuls in the precision the step computes in (bf16 where `train.bf16_supported`,
  else fp32), the best of a few tries, on the same threads;
- the share: the step's GFLOP/s (its FLOPs x steps / the loop's seconds) over that peak. Augmentation, the
  optimiser and BatchNorm are in the loop's seconds and not in the FLOPs, as they are not in any peak.
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ebyd_utils.train import as_input, autocast, bf16_supported


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, use_bf16: bool = True) -> int:
    """Matmul and convolution FLOPs of one training step (forward + backward) on the batch (x, y)."""
    model = model.train()
    with FlopCounterMode(display=False) as counter:
        with autocast(x.device, use_bf16):
            loss = torch.nn.functional.cross_entropy(model(as_input(x)), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def matmul_peak(device, size: int = 1024, repeats: int = 20, tries: int = 3) -> tuple[float, str]:
    """(GFLOP/s, dtype name) of size x size matmuls in the dtype the training step uses, the best of `tries`."""
    dtype = torch.bfloat16 if bf16_supported(device) else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    (a @ b).sum().item()  # warm-up
    best = 0.0
    for _ in range(tries):
        start = time.perf_counter()
        for _ in range(repeats):
            c = a @ b
        c.sum().item()
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best, str(dtype).replace("torch.", "")
