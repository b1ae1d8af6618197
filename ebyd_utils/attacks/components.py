"""Small shared pieces of the attacks with a trained component (LC, IAD, SSBA).

- `seeded(seed, device)`: a block whose random draws come from `seed` only, leaving the caller's global RNG as
  it was (a forked RNG; the CUDA one too when the data is on a GPU, since `torch.manual_seed` seeds both);
- `subsample`: a seeded subset of the attacker's training images (the budget fields of each attack);
- `TinyUNet`: a 3-level conv encoder-decoder (optional skip connections) for generators and encoders; it upsamples
  to the skip's size, so it runs at any resolution;
- `surrogate_config` / `train_surrogate`: the package's own FastCNN and training loop as the attacker's clean
  surrogate (the `quick` profile's recipe, the `smoke` one on small sets);
- `module_tensors` / `load_module`: a module's state as flat tensors for a cached unit, and back.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from ..config import TrainConfig
from ..models import build_model
from ..train import train_model

SMALL_SET = 10_000  # below this many images the surrogate trains with the smoke profile's batch size and lr


@contextlib.contextmanager
def seeded(seed: int, device="cpu"):
    """Yield a CPU generator seeded with `seed` inside a forked global RNG, itself seeded with `seed` (module
    initialisation draws from it); the caller's RNG state is restored on exit."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def subsample(x: torch.Tensor, y: torch.Tensor, n: int, gen: torch.Generator):
    """n images drawn without replacement (all of them when n is 0 or >= len(x)), in their original order."""
    if not n or n >= len(x):
        return x, y
    keep = torch.randperm(len(x), generator=gen)[:n].sort().values.to(x.device)
    return x[keep], y[keep]


def batch_indices(n: int, batch_size: int, gen: torch.Generator, device):
    """One seeded epoch of batch index tensors (the last batch may be smaller)."""
    order = torch.randperm(n, generator=gen).to(device)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class TinyUNet(nn.Module):
    """conv(w) -> pool -> conv(2w) -> pool -> conv(4w) -> up -> conv(2w) -> up -> conv(w) -> 1x1 conv; raw output.

    With `skips` the decoder also sees the encoder's maps (a U-Net, as StegaStamp's encoder); without, a plain
    encoder-decoder (as IAD's generators). About 13 M multiply-adds a 32x32 image at width 16."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 16, skips: bool = True):
        super().__init__()
        self.skips = skips
        extra = (lambda c: c) if skips else (lambda c: 0)
        self.down1 = _conv_block(in_channels, width)
        self.down2 = _conv_block(width, 2 * width)
        self.middle = _conv_block(2 * width, 4 * width)
        self.up2 = _conv_block(4 * width + extra(2 * width), 2 * width)
        self.up1 = _conv_block(2 * width + extra(width), width)
        self.out = nn.Conv2d(width, out_channels, 1)

    def _up(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return torch.cat([x, skip], 1) if self.skips else x

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(F.max_pool2d(a, 2))
        c = self.middle(F.max_pool2d(b, 2))
        b = self.up2(self._up(c, b))
        return self.out(self.up1(self._up(b, a)))


# -------------------------------------------------------------------------------------- the surrogate
SURROGATE_ARCH = dict(widths=(32, 64, 128), stem_width=16, activation="relu")


def surrogate_config(n_images: int, epochs: int, batch_size: int | None = None) -> TrainConfig:
    """The `quick` profile's recipe (batch 500, lr 1.0) on CIFAR-sized sets; the `smoke` one (batch 100, lr 0.3,
    no augmentation) below SMALL_SET images, where batches of 500 would give a handful of steps, or when a loop
    steps in batches under 500 (`batch_size`: IAD's joint loop uses 128)."""
    large = n_images >= SMALL_SET if batch_size is None else batch_size >= 500
    if large:
        return TrainConfig(model="fastcnn", **SURROGATE_ARCH, epochs=epochs, batch_size=500, lr=1.0, momentum=0.85)
    return TrainConfig(
        model="fastcnn",
        **SURROGATE_ARCH,
        epochs=epochs,
        batch_size=batch_size or 100,
        lr=0.3,
        momentum=0.85,
        crop_pad=0,
        flip=False,
    )


def new_surrogate(num_classes: int) -> nn.Module:
    return build_model("fastcnn", num_classes, **SURROGATE_ARCH)


def train_surrogate(x, y, num_classes: int, epochs: int, seed: int, progress: bool = False) -> nn.Module:
    """A clean FastCNN trained on uint8 images x by the package's loop (call inside `seeded`: initialisation
    draws from the global RNG)."""
    cfg = surrogate_config(len(x), epochs)
    return train_model(new_surrogate(num_classes).to(x.device), x, y, cfg, seed, progress, desc="surrogate")


# -------------------------------------------------------------------------------------- tensors <-> modules
def module_tensors(module: nn.Module, prefix: str) -> dict:
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def load_module(build, tensors: dict, prefix: str) -> nn.Module:
    """The module `build()` makes, with the `prefix.` entries of tensors, on their device, in eval mode, gradients
    off. Its throw-away initial weights draw from a forked RNG, so loading leaves the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        module = build()
    state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    module.load_state_dict(state)
    device = next(iter(state.values())).device
    return module.to(device).eval().requires_grad_(False)
