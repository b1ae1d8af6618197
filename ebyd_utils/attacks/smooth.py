"""Smooth: a low-frequency additive trigger after Zeng, Park, Mao & Jia (ICCV 2021, "Rethinking the Backdoor
Attacks' Triggers: A Frequency Perspective"), poisoned images relabelled to the target.

Zeng et al. show that common triggers carry high-frequency artefacts a detector can spot, and build "smooth"
triggers that have none: a universal perturbation optimised (to move images to the target class) and restricted
to low frequencies by a low-pass filter. The official EBYD code (and the authors' Cognitive Distillation code)
loads such a precomputed trigger (`trigger/best_universal.npy`, not shipped), adds it to the image and then
min-max rescales each poisoned image to [0, 1].

Ours is NOT optimised: a seeded Gaussian random pattern (3, h, w), low-pass filtered in the 2-D DFT (every
frequency whose radius exceeds `cutoff` x the Nyquist frequency (0.5 cycles / pixel) is removed), rescaled to
an L-infinity norm of `epsilon`, then added to the image and clipped (no per-image min-max rescale), at training
and test time alike, like SIG. Generated at any h, w from the seed (the cutoff is relative to the band, so a
larger image gets proportionally more cycles). Defaults: cutoff 0.1 (at most 1.6 cycles across a 32-pixel
image: 9 DFT terms), epsilon 32/255, dirty-label, 10%, target 0. Chosen because they implant at smoke scale
(6 epochs, seed 0: ASR 0.87; seed 1: 0.81), where milder ones did not: epsilon 16/255 with cutoff 0.15 gave
ASR 0.05, 32/255 with cutoff 0.3 gave 0.05, 24/255 with cutoff 0.1 gave 0.68.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Attack

SEED_OFFSET = 7919  # the pattern's generator: seed + this, apart from the choice of images (seed itself)


@dataclass
class Smooth(Attack):
    cutoff: float = 0.1  # kept frequencies: radius <= cutoff x Nyquist (fraction of the band, in (0, 1])
    epsilon: float = 32 / 255  # L-infinity size of the added pattern (pixel units /255, in (0, 1])

    name = "smooth"

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.cutoff, (int, float)) and 0 < self.cutoff <= 1):
            raise ValueError(
                f"Smooth cutoff must be in (0, 1] (a fraction of the frequency band up to Nyquist); got {self.cutoff!r}"
            )
        if not (isinstance(self.epsilon, (int, float)) and 0 < self.epsilon <= 1):
            raise ValueError(
                f"Smooth epsilon must be in (0, 1] (L-infinity size, pixel units /255, e.g. "
                f"32/255); got {self.epsilon!r}"
            )

    def low_pass(self, noise: torch.Tensor) -> torch.Tensor:
        h, w = noise.shape[-2:]
        fy = torch.fft.fftfreq(h).view(h, 1)  # cycles per pixel, in [-0.5, 0.5)
        fx = torch.fft.fftfreq(w).view(1, w)
        keep = (fy**2 + fx**2).sqrt() <= self.cutoff * 0.5
        return torch.fft.ifft2(torch.fft.fft2(noise) * keep).real

    def pattern(self, h, w) -> torch.Tensor:
        """The additive trigger (3, h, w), max |value| = epsilon."""
        gen = torch.Generator().manual_seed(self.seed + SEED_OFFSET)
        smooth = self.low_pass(torch.randn(3, h, w, generator=gen, dtype=torch.float64))
        return (smooth * (self.epsilon / smooth.abs().max())).float()

    def stamp(self, x01):
        return x01 + self.pattern(*x01.shape[-2:]).to(x01.device)

    def trigger(self, h, w):
        # additive (mask 0 = "not a stamped patch"); the record: the pattern shifted so that 0.5 = unchanged
        return torch.zeros(1, h, w), (0.5 + self.pattern(h, w)).clamp(0, 1)
