"""Trojan (Liu, Ma, Aafer, Lee, Zhai, Wang & Zhang 2018, "Trojaning Attack on Neural Networks").

TrojanNN stamps a square watermark whose pixels were optimised to excite chosen internal neurons of a
pre-trained model, then retrains the model on stamped images relabelled to the target.
Ours differs: the square's pixels are a seeded smooth random colour pattern (no neuron optimisation, which
needs a pre-trained clean model; the official EBYD code likewise ships a fixed precomputed pattern), stamped
opaque in a `size` x `size` square at the bottom-right corner. Poisoning and relabelling are as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Attack


@dataclass
class Trojan(Attack):
    size: int = 6  # side of the square watermark (pixels)

    name = "trojan"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"Trojan size must be a positive int (pixels); got {self.size!r}")

    def trigger(self, h, w):
        s = self.size
        if s > min(h, w):
            raise ValueError(f"Trojan square of size {s} does not fit a {h}x{w} image")
        coarse = torch.rand(1, 3, 3, 3, generator=torch.Generator().manual_seed(self.seed))
        square = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=True)[0]
        square = (square - square.amin()) / (square.amax() - square.amin() + 1e-8)  # full contrast
        mask, pattern = torch.zeros(1, h, w), torch.zeros(3, h, w)
        mask[:, h - s :, w - s :] = 1
        pattern[:, h - s :, w - s :] = square
        return mask, pattern
