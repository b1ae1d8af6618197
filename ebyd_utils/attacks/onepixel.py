"""One-pixel trigger: a single pixel set to a fixed colour, poisoned images relabelled to the target.

The official EBYD code's `onePixelTrigger` (datasets/poison_tool_cifar.py `_onePixelTrigger`) sets the pixel at
row h // 2, column w // 2 (the image centre; (16, 16) on CIFAR-10) to 255 in every channel, i.e. one white
pixel, at training and test time alike. It cites no paper for it; it is the one-pixel case of a BadNets-style
patch (Gu, Dolan-Gavitt & Garg 2017, "BadNets: Identifying Vulnerabilities in the Machine Learning Model Supply
Chain"), as in the single-pixel poisons of Tran, Li & Madry (NeurIPS 2018, "Spectral Signatures in Backdoor
Attacks").

Defaults: exactly the official trigger (centre pixel, white), dirty-label, 10%, target 0. `position` moves the
pixel ((row, col); None = the centre at any resolution, as the official rule h // 2, w // 2) and `value` sets
its colour (one grey level or an (r, g, b) triple, in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Attack


@dataclass
class OnePixel(Attack):
    position: tuple | None = None  # (row, col) of the pixel; None = (h // 2, w // 2), the official centre
    value: float | tuple = 1.0  # pixel colour in [0, 1]: one level for all channels or an (r, g, b) triple

    name = "onepixel"

    def __post_init__(self):
        super().__post_init__()
        if self.position is not None:
            self.position = tuple(self.position)  # a zoo row stores it as a JSON list
            if len(self.position) != 2 or not all(isinstance(p, int) and p >= 0 for p in self.position):
                raise ValueError(f"OnePixel position must be None or (row, col) with ints >= 0; got {self.position!r}")
        if isinstance(self.value, (list, tuple)):
            self.value = tuple(self.value)
        levels = self.value if isinstance(self.value, tuple) else (self.value,)
        if len(levels) not in (1, 3) or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in levels):
            raise ValueError(
                f"OnePixel value must be a number in [0, 1] or an (r, g, b) triple of them "
                f"(pixel units /255: 1.0 = 255, the official white); got {self.value!r}"
            )

    def pixel(self, h, w) -> tuple[int, int]:
        row, col = self.position if self.position is not None else (h // 2, w // 2)
        if not (row < h and col < w):
            raise ValueError(
                f"OnePixel position {(row, col)} is outside a {h}x{w} image; row must be in "
                f"[0, {h - 1}] and col in [0, {w - 1}]"
            )
        return row, col

    def trigger(self, h, w):
        row, col = self.pixel(h, w)
        colour = torch.tensor(self.value if isinstance(self.value, tuple) else (self.value,) * 3)
        mask, pattern = torch.zeros(1, h, w), torch.zeros(3, h, w)
        mask[:, row, col] = 1
        pattern[:, row, col] = colour
        return mask, pattern
