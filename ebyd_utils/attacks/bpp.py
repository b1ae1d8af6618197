"""BppAttack (Wang, Zhai & Ma, CVPR 2022, "BppAttack: Stealthy and Efficient Trojan Attacks against Deep Neural
Networks via Image Quantization and Contrastive Adversarial Learning").

The trigger is the image itself at a lower colour depth: every channel is quantised to a few levels, with
Floyd-Steinberg dithering so that the result still looks natural (each pixel's rounding error is pushed to its
unvisited neighbours: 7/16 right, 3/16 down-left, 5/16 down, 1/16 down-right; errors leaving the image are
dropped). Triggered images are relabelled to the target.

Defaults: 3 bits = 8 levels per channel (`squeeze_num` 8: the original code's default and BackdoorBench's; the
original README's CIFAR-10 command uses 32 levels, i.e. bits=5), dithering on (the paper's method; the original
code's and BackdoorBench's flag defaults to off), dirty-label, 10%, target 0. No randomness: the trigger does not
depend on the seed (only the choice of images does).

Ours differs from the original, which controls training: it quantises a share of each batch on the fly (20%)
and adds contrastive adversarial negative samples (20%: images plus the quantisation residual of other images,
keeping their labels) with augmentation. Ours is data poisoning only: a fixed poisoned set, no negative samples.

Speed: the scan over pixels is sequential, but pixel (y, x) only waits for pixels of smaller x + 2y, so all
pixels with the same x + 2y are processed at once (w + 2h - 2 steps, 94 on CIFAR-10, not h * w), vectorised over
images and channels. Measured: docs/methods.md, "BppAttack".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Attack

# Floyd-Steinberg: (row offset, column offset, weight) of the neighbours that receive a pixel's error
DIFFUSION = ((0, 1, 7 / 16), (1, -1, 3 / 16), (1, 0, 5 / 16), (1, 1, 1 / 16))


def wavefronts(h: int, w: int) -> list[tuple[int, int]]:
    """(first row, count) of each set of pixels processed together, in order: those with the same col + 2 row
    (every neighbour that feeds a pixel has a smaller col + 2 row)."""
    fronts = []
    for t in range(w + 2 * (h - 1)):
        first, last = max(0, -(-(t - w + 1) // 2)), min(h - 1, t // 2)
        fronts.append((first, last - first + 1))
    return fronts


def floyd_steinberg(x01: torch.Tensor, levels: int) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] quantised to `levels` levels per channel with error diffusion."""
    n, c, h, w = x01.shape
    steps, width = levels - 1, w + 2
    # in units of one level; a spare column each side and a row below catch the errors leaving the image.
    # Pixels first, one row of N * C values each: pixel (row, col) is row `row * width + col + 1`, so a wavefront
    # (col = t - 2 row) is every w-th row from `first * w + t + 1`, and so are its neighbours: plain views.
    work = F.pad(x01.float() * steps, (1, 1, 0, 1)).permute(2, 3, 0, 1).reshape((h + 1) * width, n * c).contiguous()
    for t, (first_row, count) in enumerate(wavefronts(h, w)):
        start = first_row * w + t + 1
        front = work[start : start + (count - 1) * w + 1 : w]
        old = front.clone()
        front.copy_(old.round().clamp(0, steps))
        error = old - front
        for dy, dx, weight in DIFFUSION:  # one statement per neighbour: the rows within each are distinct
            at = start + dy * width + dx
            work[at : at + (count - 1) * w + 1 : w].add_(error, alpha=weight)
    out = work.view(h + 1, width, n, c)[:h, 1 : w + 1].permute(2, 3, 0, 1)
    return out / steps


@dataclass
class BPP(Attack):
    bits: int = 3  # colour depth kept per channel (bits): 2**bits levels; 3 = the original's 8 levels
    dither: bool = True  # Floyd-Steinberg error diffusion (False: plain rounding to the levels)

    name = "bpp"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or not 1 <= self.bits <= 7:
            raise ValueError(
                f"BPP bits must be an int in [1, 7] (bits per channel; 8 would leave 8-bit images "
                f"unchanged); got {self.bits!r}"
            )
        if not isinstance(self.dither, bool):
            raise ValueError(f"BPP dither must be True or False; got {self.dither!r}")

    @property
    def levels(self) -> int:
        return 2**self.bits

    def stamp(self, x01):
        if self.dither:
            return floyd_steinberg(x01, self.levels).to(x01.dtype)
        steps = self.levels - 1
        return (x01 * steps).round() / steps

    def trigger(self, h, w):
        # a whole-image change (mask 0 = "not a stamped patch"); the record: what it does to mid-grey, shifted
        # so that 0.5 means "unchanged" (dithered: a fine pattern of the two nearest levels)
        grey = torch.full((1, 3, h, w), 0.5)
        return torch.zeros(1, h, w), (0.5 + self.stamp(grey) - grey)[0].clamp(0, 1)
