"""SIG (Barni, Kallas & Tondi 2019, "A New Backdoor Attack in CNNs by Training Set Corruption Without Label
Poisoning"): a clean-label attack. A horizontal sinusoid v(i, j) = delta * sin(2 pi j f / W) is added to
target-class training images, whose labels stay correct; at test time the same signal on any image pulls it to
the target.

`rate` counts over the whole training set like every attack, but all poisoned images are target-class images
(default 0.03 = 30% of the target class on balanced CIFAR-10, as in the official code). Signal: delta 20/255,
f = 6 (Barni et al.), added and clipped, with the same formula at training and test time (the official code
blends with swapped weights between the two).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import Attack


@dataclass
class SIG(Attack):
    rate: float = 0.03  # share of the whole training set (all of it target-class images)
    delta: float = 20 / 255  # signal amplitude in [0, 1] pixel units
    frequency: int = 6  # periods across the image width

    name = "sig"
    clean_label = True

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.delta <= 1:
            raise ValueError(f"SIG delta must be in (0, 1] (pixel units); got {self.delta!r}")

    def signal(self, h, w) -> torch.Tensor:
        j = torch.arange(w, dtype=torch.float32)
        return (self.delta * torch.sin(2 * math.pi * j * self.frequency / w)).expand(3, h, w)

    def stamp(self, x01):
        return x01 + self.signal(*x01.shape[-2:]).to(x01.device)

    def trigger(self, h, w):
        # additive: record the signal itself (mask 0 marks "added, not stamped")
        return torch.zeros(1, h, w), self.signal(h, w).clone()
