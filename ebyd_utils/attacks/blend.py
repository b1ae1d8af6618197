"""Blend (Chen, Liu, Li, Lu & Song 2017, "Targeted Backdoor Attacks on Deep Learning Systems Using Data
Poisoning"): the whole image is alpha-blended with a key pattern, x' = (1 - alpha) x + alpha k.

Default: a seeded uniform random-noise key (Chen et al.'s "random pattern" variant) at alpha 0.2 (the official
EBYD code's alpha), for training and test alike. Differs from the official code, which blends a Hello Kitty
image that is not shipped. Users can pass their own `image` (3, H, W), uint8 or [0, 1], and `alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Attack, as_unit_float


@dataclass
class Blend(Attack):
    alpha: float = 0.2  # blend weight of the key pattern
    image: torch.Tensor | None = None  # key pattern (3, H, W); None = seeded uniform noise

    name = "blend"

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.alpha <= 1:
            raise ValueError(f"Blend alpha must be in (0, 1]; got {self.alpha!r}")
        if self.image is not None:
            self.image = as_unit_float(self.image, "Blend image")
            if self.image.ndim != 3 or self.image.shape[0] != 3:
                raise ValueError(f"Blend image must have shape (3, H, W); got {tuple(self.image.shape)}")

    def trigger(self, h, w):
        if self.image is None:
            key = torch.rand(3, h, w, generator=torch.Generator().manual_seed(self.seed))
        elif self.image.shape[1:] != (h, w):
            raise ValueError(
                f"Blend image is {tuple(self.image.shape[1:])} but the data is {h}x{w}; "
                f"pass an image of shape (3, {h}, {w})"
            )
        else:
            key = self.image
        return torch.full((1, h, w), float(self.alpha)), key
