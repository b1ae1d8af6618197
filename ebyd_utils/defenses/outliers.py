"""Outlier scores over per-class statistics: the median absolute deviation (MAD) rule of Neural Cleanse
(Wang et al., S&P 2019, `mad_outlier_detection.py`), kept apart so other detectors can read any per-class score
the same way. Defender-side."""

from __future__ import annotations

import math

import torch

MAD_CONSISTENCY = 1.4826  # MAD -> standard deviation for a normal distribution


def median(values: torch.Tensor) -> torch.Tensor:
    """The median as numpy defines it (mean of the two middle values for an even count); torch.median
    returns the lower one."""
    return torch.quantile(values.double(), 0.5).to(values.dtype)


def anomaly_indices(norms) -> torch.Tensor:
    """|norm - median| / (1.4826 * MAD), MAD = median |norm - median| (Neural Cleanse's outlier score).

    A MAD of 0 (half the norms equal) gives inf for every norm off the median and 0 on it."""
    norms = torch.as_tensor(norms, dtype=torch.float64).flatten()
    if len(norms) < 3:
        raise ValueError(f"anomaly indices need the norms of at least 3 classes; got {len(norms)}")
    mid = median(norms)
    deviation = (norms - mid).abs()
    mad = MAD_CONSISTENCY * median(deviation)
    if mad == 0:
        return torch.where(deviation > 0, math.inf, 0.0).double()
    return deviation / mad


def flag_label(classes: list, norms: torch.Tensor, anomaly: torch.Tensor, threshold: float) -> int | None:
    """The smallest-norm class whose norm is below the median and whose anomaly index exceeds threshold."""
    if len(classes) < 3:
        return None
    below = norms < median(norms)
    candidates = [i for i in range(len(classes)) if below[i] and anomaly[i] > threshold]
    return classes[min(candidates, key=lambda i: norms[i].item())] if candidates else None
