"""The default threshold's false flags (notebook 10): the exposure score of every distinct clean model the image
sections read, and the label-detection rule's false-flag rate on them with its exact interval. Split from
`claims.py`, whose rows these numbers stand beside."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .claims import LEVEL, with_model_id


def clean_scores(results_dir) -> pd.DataFrame:
    """The exposure score (label detection's excess share after CUL) of every distinct clean model the image
    sections read: notebook 03's clean controls and notebook 05's clean models (references excluded: they define
    the score). One row per model_id."""
    r = Path(results_dir)
    frames = []
    if (r / "03_label_detection.csv").exists():
        d = pd.read_csv(r / "03_label_detection.csv")
        d = with_model_id(d)
        frames.append(d[~d["backdoored"] & (d["exposure"] == "CUL")][["model_id", "score", "threshold"]])
    if (r / "05_model_scores.csv").exists():
        s = pd.read_csv(r / "05_model_scores.csv")
        s = s[~s["backdoored"] & (s["detector"] == "exposure") & (s["exposure"] == "CUL")]
        frames.append(s[["model_id", "score"]])
    if not frames:
        return pd.DataFrame(columns=["model_id", "score"])
    return pd.concat(frames).drop_duplicates("model_id").reset_index(drop=True)[["model_id", "score"]]


def false_flags(scores: pd.Series, threshold: float) -> dict:
    """The rule's false-flag rate on clean models (score >= threshold) with its exact (Clopper-Pearson) 95%
    interval, n, and the largest clean score beside the threshold."""
    from scipy.stats import beta

    n, k = len(scores), int((scores >= threshold).sum())
    low = 0.0 if k == 0 else float(beta.ppf((1 - LEVEL) / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - (1 - LEVEL) / 2, k + 1, n - k))
    return {
        "threshold": threshold,
        "n_clean": n,
        "flagged": k,
        "rate": k / n if n else float("nan"),
        "low": low,
        "high": high,
        "largest_clean_score": float(scores.max()) if n else float("nan"),
    }
