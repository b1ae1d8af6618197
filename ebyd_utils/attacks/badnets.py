"""BadNets (Gu, Dolan-Gavitt & Garg 2017, "BadNets: Identifying Vulnerabilities in the Machine Learning Model
Supply Chain").

A small patch stamped at a fixed position; poisoned images relabelled to the target. Default: the official EBYD
code's 3x3 black/white grid at the bottom-right corner (`gridTrigger`, the trigger of its CUL log), 10%,
target 0. Differs from Gu et al.: their patch was a white square / pattern on MNIST and street signs.
Custom triggers: any `size`, `position` (top-left row, col) and `pattern` ((s, s) or (3, s, s), uint8 or [0, 1]);
without one, a size other than 3 gets a black/white pattern drawn from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Attack, as_unit_float

# The official code's grid, rows top to bottom of the 3x3 corner (poison_tool_cifar.py `_gridTriger`).
OFFICIAL_GRID = torch.tensor([[0, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.float32)


@dataclass
class BadNets(Attack):
    size: int = 3  # patch side (pixels)
    position: tuple | None = None  # (row, col) of the patch's top-left pixel; None = bottom-right corner
    pattern: torch.Tensor | None = None  # (size, size) or (3, size, size); None = the official 3x3 grid

    name = "badnets"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"BadNets size must be a positive int (pixels); got {self.size!r}")
        if self.position is not None:
            self.position = tuple(self.position)  # a zoo row stores it as a JSON list
        if self.pattern is not None:
            p = as_unit_float(self.pattern, "BadNets pattern")
            if p.shape not in ((self.size, self.size), (3, self.size, self.size)):
                raise ValueError(
                    f"BadNets pattern must have shape ({self.size}, {self.size}) or "
                    f"(3, {self.size}, {self.size}) to match size={self.size}; got {tuple(p.shape)}"
                )
            self.pattern = p

    def default_pattern(self) -> torch.Tensor:
        """The official 3x3 grid; for another size a black/white pattern drawn from the attack's seed (made
        here, not stored, so that the parameters alone rebuild it)."""
        if self.size == 3:
            return OFFICIAL_GRID
        gen = torch.Generator().manual_seed(self.seed)
        return (torch.rand(self.size, self.size, generator=gen) > 0.5).float()

    def trigger(self, h, w):
        s = self.size
        row, col = self.position if self.position is not None else (h - s, w - s)
        if not (0 <= row <= h - s and 0 <= col <= w - s):
            raise ValueError(
                f"BadNets patch of size {s} at {(row, col)} does not fit a {h}x{w} image; "
                f"row must be in [0, {h - s}] and col in [0, {w - s}]"
            )
        patch = (self.pattern if self.pattern is not None else self.default_pattern()).expand(3, s, s)
        mask, pattern = torch.zeros(1, h, w), torch.zeros(3, h, w)
        mask[:, row : row + s, col : col + s] = 1
        pattern[:, row : row + s, col : col + s] = patch
        return mask, pattern
