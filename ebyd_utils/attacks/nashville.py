"""Nashville: an Instagram-style colour filter over the whole image as the trigger, poisoned images relabelled
to the target.

Filter triggers come from ABS (Liu, Lee, Tao, Ma, Aafer & Zhang, CCS 2019, "ABS: Scanning Neural Networks for
Back-doors by Artificial Brain Stimulation"), whose feature-space trojans include Instagram filters such as
Nashville. The official EBYD code (datasets/poison_tool_cifar.py `_nashvilleTrigger`; so does the authors' Cognitive
Distillation code) calls `pilgram.nashville` on the poisoned images and cites no paper for it in code or README.

Ours re-implements pilgram's Nashville (akiomik/pilgram, `pilgram/nashville.py`, a port of the CSSgram filter) as
batched tensor ops on any device, pilgram not being a dependency. Its steps, on 8-bit RGB levels:
1. darken blend with the colour (247, 176, 153) at alpha 0.56: x <- x + a (min(x, c) - x);
2. lighten blend with (0, 70, 150) at alpha 0.4:               x <- x + a (max(x, c) - x);
3. sepia 0.2, 4. contrast 1.2, 5. brightness 1.05, 6. saturate 1.2 (the CSS / SVG filter matrices).
Each step is rounded to 8 bits in pilgram's own arithmetic (PIL's flooring multiply, Python's round, PIL's
float32 colour matrix), so the output equals pilgram's on every one of the 2^24 RGB colours (checked once against
pilgram's source). The filter has no parameters, so the trigger is the same for every seed; training and test
images get the same filter. It changes a pixel by 16.3 levels of 255 on average over all colours, at most 53.
Defaults: dirty-label, 10%, target 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Attack

DARKEN_COLOUR, DARKEN_ALPHA = (247, 176, 153), 143  # pilgram: fill (247, 176, 153, 0.56); alpha of 255
LIGHTEN_COLOUR, LIGHTEN_ALPHA = (0, 70, 150), 102  # pilgram: fill (0, 70, 150, 0.4); alpha of 255
SEPIA, CONTRAST, BRIGHTNESS, SATURATE = 0.2, 1.2, 1.05, 1.2


def blend(v: torch.Tensor, mode, rgb, alpha: int) -> torch.Tensor:
    """A CSS blend with a flat colour of 8-bit alpha, in pilgram's arithmetic: PIL's multiply floors a * b / 255,
    and the two weighted terms are added and clipped."""
    source = mode(v, torch.tensor(rgb, dtype=v.dtype).view(1, 3, 1, 1))
    return (torch.floor(alpha * source / 255) + torch.floor((255 - alpha) * v / 255)).clamp(0, 255)


def point(v: torch.Tensor, gain: float, offset: float = 0.0) -> torch.Tensor:
    """A per-level map rounded as Python's round() in pilgram's `im.point` (float64, ties to even)."""
    return (v * gain + offset).round().clamp(0, 255)


def level_table(step) -> torch.Tensor:
    """(3, 256): what per-channel steps make of each 8-bit level, as PIL's point tables; float64 so that
    rounding ties fall as in pilgram's Python arithmetic."""
    return step(torch.arange(256, dtype=torch.float64).expand(1, 3, 1, 256))[0, :, 0].to(torch.uint8)


BLENDS = level_table(
    lambda v: blend(blend(v, torch.minimum, DARKEN_COLOUR, DARKEN_ALPHA), torch.maximum, LIGHTEN_COLOUR, LIGHTEN_ALPHA)
)
TONE = level_table(lambda v: point(point(v, CONTRAST, -127.5 * CONTRAST + 127.5), BRIGHTNESS))  # contrast: about grey


def look_up(table: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    channel = torch.arange(3, device=v.device).view(1, 3, 1, 1)
    return table.to(v.device)[channel, v.long()]


def colour_matrix(v: torch.Tensor, matrix) -> torch.Tensor:
    """Each output channel a weighted sum of the input channels, as PIL's convert("RGB", matrix) computes it:
    float32 products summed left to right, + 0.5, truncated (PIL adds 0.5 in double and stores a float: the same
    as one rounded float32 addition)."""
    m = torch.tensor(matrix, dtype=torch.float32, device=v.device)
    c = v.to(torch.float32)
    out = torch.stack([m[o, 0] * c[:, 0] + m[o, 1] * c[:, 1] + m[o, 2] * c[:, 2] for o in range(3)], 1)
    return torch.floor(out + 0.5).clamp(0, 255).to(torch.uint8)


def sepia_matrix(amount: float):
    s = 1 - min(amount, 1)  # CSS sepia(amount): s = 1 is the identity
    return [
        [0.393 + 0.607 * s, 0.769 - 0.769 * s, 0.189 - 0.189 * s],
        [0.349 - 0.349 * s, 0.686 + 0.314 * s, 0.168 - 0.168 * s],
        [0.272 - 0.272 * s, 0.534 - 0.534 * s, 0.131 + 0.869 * s],
    ]


def saturate_matrix(s: float):
    return [
        [0.213 + 0.787 * s, 0.715 - 0.715 * s, 0.072 - 0.072 * s],
        [0.213 - 0.213 * s, 0.715 + 0.285 * s, 0.072 - 0.072 * s],
        [0.213 - 0.213 * s, 0.715 - 0.715 * s, 0.072 + 0.928 * s],
    ]


def nashville(x01: torch.Tensor) -> torch.Tensor:
    """pilgram's Nashville filter on float images (N, 3, H, W) in [0, 1] (rounded to 8 bits first)."""
    v = (x01.clamp(0, 1) * 255).round().to(torch.uint8)
    v = colour_matrix(look_up(BLENDS, v), sepia_matrix(SEPIA))
    v = colour_matrix(look_up(TONE, v), saturate_matrix(SATURATE))
    return v.to(x01.dtype) / 255


@dataclass
class Nashville(Attack):
    name = "nashville"

    def stamp(self, x01):
        return nashville(x01)

    def trigger(self, h, w):
        # a whole-image filter (mask 0 = "not a stamped patch"); the record: the filtered mid-grey image's
        # change, shifted so that 0.5 means "unchanged"
        grey = torch.full((1, 3, h, w), 0.5)
        return torch.zeros(1, h, w), (0.5 + nashville(grey) - grey)[0].clamp(0, 1)
