"""WaNet (Nguyen & Tran, ICLR 2021, "WaNet - Imperceptible Warping-based Backdoor Attack"): the trigger is a
small, smooth geometric warp of the whole image; warped images are relabelled to the target.

The warp is ONE fixed field for every image, drawn from the seed as in the original code
(VinAIResearch/Warping-based_Backdoor_Attack-release, train.py): a k x k control grid of uniform noise in
[-1, 1], divided by its mean absolute value, upsampled bicubically to h x w, scaled by s / h (s / w across),
added to the identity sampling grid, times `grid_rescale`, clamped to [-1, 1] and applied with grid_sample
(bilinear, align_corners=True). Defaults are the original's: k = 4, s = 0.5, grid_rescale = 1, rate 0.1,
cross_ratio 2. At these defaults no pixel moves by 1 pixel or more (`max_shift`: 0.52-0.67 px over seeds
0-4, 32-224 px), and it still implants on the smoke data (1,500 generated images, 6 epochs, seed 0: ASR 0.93,
CA 1.00).

Noise mode: a further round(cross_ratio * number poisoned) images, drawn from the seed among the images not
poisoned (any class, as in the original's batches), get the warp plus a per-image uniform perturbation of the
grid in [-1, 1] / h, and KEEP their labels, so the model learns this exact warp rather than any warp.

Differs from the original: it is training-controlled and re-draws the poisoned, noise-mode images and their
perturbations in every batch; ours poisons the data once (fixed poisoned and noise-mode sets, one perturbation
each), the data-poisoning threat model of this package. The official EBYD code (poison_tool_cifar.py
`_wanetTrigger`) draws a NEW random warp for every image (with k = 32, "4 is not large enough for ASR") and has
no noise mode; we follow the original: one warp, drawn from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Attack, choose_kept_label

FIELD_OFFSET, CROSS_PICK_OFFSET, CROSS_NOISE_OFFSET = 101, 102, 103  # seed offsets of the three random draws


@dataclass
class WaNet(Attack):
    k: int = 4  # side of the control grid of the warp (control points)
    s: float = 0.5  # warp strength (the original's s; offsets are s * noise / h in grid units)
    grid_rescale: float = 1.0  # the original's grid_rescale (< 1 keeps border samples inside the image)
    cross_ratio: float = 2.0  # noise-mode images per poisoned image (warp + per-image noise, labels kept)

    name = "wanet"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 2:
            raise ValueError(f"WaNet k (control grid side) must be an int >= 2; got {self.k!r}")
        if not (isinstance(self.s, (int, float)) and self.s > 0):
            raise ValueError(f"WaNet s (warp strength) must be a number > 0; got {self.s!r}")
        if not (isinstance(self.grid_rescale, (int, float)) and 0 < self.grid_rescale <= 1):
            raise ValueError(f"WaNet grid_rescale must be in (0, 1]; got {self.grid_rescale!r}")
        if not (isinstance(self.cross_ratio, (int, float)) and self.cross_ratio >= 0):
            raise ValueError(f"WaNet cross_ratio must be a number >= 0 (0 = no noise mode); got {self.cross_ratio!r}")

    # -- the warp
    def identity_grid(self, h, w) -> torch.Tensor:
        rows, cols = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        return torch.stack((cols, rows), dim=-1)  # (h, w, 2): grid_sample wants (x, y)

    def noise_field(self, h, w) -> torch.Tensor:
        """The seeded control grid, normalised to mean |noise| = 1 and upsampled bicubically: (h, w, 2)."""
        control = torch.rand(1, 2, self.k, self.k, generator=torch.Generator().manual_seed(self.seed + FIELD_OFFSET))
        control = control * 2 - 1
        control = control / control.abs().mean()
        return F.interpolate(control, size=(h, w), mode="bicubic", align_corners=True)[0].permute(1, 2, 0)

    def grid(self, h, w) -> torch.Tensor:
        """The sampling grid of the warp, (h, w, 2) in [-1, 1]; offsets are s * noise / size per axis (the
        original divides both by the height of its square images)."""
        offset = self.s * self.noise_field(h, w) / torch.tensor([w, h], dtype=torch.float32)
        return ((self.identity_grid(h, w) + offset) * self.grid_rescale).clamp(-1, 1)

    def displacement(self, h, w) -> torch.Tensor:
        """Where each output pixel samples from, minus where it is, in pixels: (h, w, 2) as (dx, dy)."""
        to_pixels = torch.tensor([w - 1, h - 1], dtype=torch.float32) / 2
        return (self.grid(h, w) - self.identity_grid(h, w)) * to_pixels

    def max_shift(self, h, w) -> float:
        """The field's largest displacement (pixels, Euclidean): no pixel of a warped image comes from further."""
        return float(self.displacement(h, w).norm(dim=-1).max())

    @staticmethod
    def warp(x01: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        grid = grid.to(x01.device, x01.dtype)
        if grid.ndim == 3:
            grid = grid.expand(len(x01), *grid.shape)
        return F.grid_sample(x01, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    def stamp(self, x01):
        return self.warp(x01, self.grid(*x01.shape[-2:]))

    def trigger(self, h, w):
        # a warp is no stamped patch (mask 0); the record holds the field: 0.5 + (dx, dy) / 2 in the first two
        # channels (so +-1 pixel spans [0, 1]), 0.5 in the third
        pattern = torch.full((3, h, w), 0.5)
        pattern[:2] = (0.5 + self.displacement(h, w).permute(2, 0, 1) / 2).clamp(0, 1)
        return torch.zeros(1, h, w), pattern

    # -- noise mode
    def cross_images(self, x: torch.Tensor) -> torch.Tensor:
        """The warp plus a seeded per-image uniform grid perturbation in [-1, 1] / h (the original's noise mode)."""
        n, _, h, w = x.shape
        gen = torch.Generator().manual_seed(self.seed + CROSS_NOISE_OFFSET)
        jitter = (torch.rand(n, h, w, 2, generator=gen) * 2 - 1) / h
        grids = (self.grid(h, w) + jitter).clamp(-1, 1)
        return (self.warp(x.float() / 255, grids).clamp(0, 1) * 255).round().to(torch.uint8)

    def cross_indices(self, y: torch.Tensor, poisoned: torch.Tensor) -> torch.Tensor:
        """round(cross_ratio * len(poisoned)) seeded indices, disjoint from the poisoned ones, any class."""
        n_cross = round(self.cross_ratio * len(poisoned))
        return choose_kept_label(self, y, poisoned, n_cross, self.seed + CROSS_PICK_OFFSET, any_class=True)

    extra_indices = cross_indices  # the common name of label-keeping extras (cover samples, noise mode)

    def poison(self, x, y, num_classes):
        """Base poisoning (relabelled, warped), then the noise-mode images (labels kept); returns the
        relabelled indices only."""
        x, y, idx = super().poison(x, y, num_classes)
        cross = self.cross_indices(y, idx).to(x.device)
        if len(cross):
            x[cross] = self.cross_images(x[cross])
        return x, y, idx
