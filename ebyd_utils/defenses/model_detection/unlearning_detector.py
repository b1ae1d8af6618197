"""The official EBYD code's unlearning-based model detector (Li et al. 2024, "Expose Before You Defend",
github.com/bboylyg/Expose-Before-You-Defend): unlearn the suspect on clean data, then read how unevenly the
exposed model spreads clean images over the classes,

    score = variance over classes c of share_c,   share_c = share of clean images predicted as c,

and flag the model when the score exceeds 0.01. A clean model's predictions stay spread over the classes (variance
near 0); an exposed backdoored model sends many clean images to its target (all on one class: 0.09 for 10
classes). Read on the un-exposed suspect, the same score is the "no exposure" reading.

Where ours differs: the official detector unlearns with SGD lr 0.005 for 20 epochs on 500 images and reads the
shares at the end; ours reads the shares of the companion's own CUL run (the profile's `cul` setting, stopped at
its collapse point) on the defender's probe images, so the exposure is the same one every other section uses.
The variance is the population variance (numpy's default), over the classes.

Defender-side: takes class shares of clean images, nothing about the attack.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

THRESHOLD = 0.01  # the official rule: flag when the variance of class shares exceeds this


@dataclass
class ShareVariance:
    score: float  # variance of the class shares
    label: int  # the class with the largest share (the label the detector would name)
    flagged: bool  # score > threshold
    threshold: float


def share_variance(shares, threshold: float = THRESHOLD) -> ShareVariance:
    """The official unlearning detector's reading of one class-share vector (shares sum to 1)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1) (the official: 0.01); got {threshold}")
    shares = torch.as_tensor(shares, dtype=torch.float64).flatten()
    if len(shares) < 2 or (shares < 0).any() or abs(float(shares.sum()) - 1) > 1e-3:
        raise ValueError(f"shares must be >= 2 non-negative class shares summing to 1; got {shares.tolist()}")
    score = float(shares.var(unbiased=False))
    return ShareVariance(score, int(shares.argmax()), score > threshold, threshold)
