"""Text model detection with and without exposure (EBYD Sec. 4.3 on text; the image track's
`experiments/model_detection.py`): one score per model and detector over the clean controls and the backdoored
models, judged by ROC AUC (`core/metrics.py`): the exposure score of label detection (`label_detection.py`,
argmax-share reading; "none" = the model as it is) and the token scan's score (`trigger_recovery.py`: its largest
flip rate above the references').
"""

from __future__ import annotations

import pandas as pd

from ...core.metrics import metrics_table


def model_scores(detections: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """One row per (detector, exposure, zoo model): backdoored, score, flagged; the references are not scored
    (they define the scores)."""
    share = detections[detections["reading"] == "share"]
    label = share.assign(detector="exposure score")[
        ["detector", "exposure", "model_id", "attack", "seed", "backdoored", "score", "flagged"]
    ]
    token = flags.assign(detector="token scan", backdoored=flags["attack"] != "clean")
    return pd.concat([label, token[label.columns]], ignore_index=True)


def model_detection(scores: pd.DataFrame, resamples: int = 2000) -> pd.DataFrame:
    """ROC AUC (bootstrap interval), TPR at 5% FPR and the rules' TPR / FPR per detector and exposure."""
    return metrics_table(scores, resamples=resamples)
