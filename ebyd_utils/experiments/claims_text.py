"""The text track's claim rows (notebook 10, from notebook 09's CSVs: one set per dataset, `09_text_*<_dataset>.csv`).

Each exposure of the profile (CUL on all weights, on the embeddings) is read against the suspect as it is ("none"),
on the same models, by the section's own measure -- the same four claims as the images, with the same rule
(`claims.verdict`):
  1 label detection   flagged with the true target (the argmax-share reading);
  2 trigger recovery  the token scan flags the true target's label (its top token flips rows onto it);
  3 model detection   ROC AUC over the zoo models (backdoored vs clean controls) of each detector of notebook 09
                      (the exposure score, the token scan's score), with the exposure minus without;
  4 removal           DER of the token reset, its tokens found on the exposed copy vs on the suspect.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..text.experiments.model_detection import model_scores
from .claims import _auc_row, _pairs, label_detection, paired_rows, removal


def text_claim_rows(results_dir, seed: int = 0) -> list[dict]:
    """Every text claim row the CSVs in `results_dir` support, dataset by dataset (a missing table adds none)."""
    r = Path(results_dir)
    rows = []
    for path in sorted(r.glob("09_text_detection*.csv")):
        if "summary" in path.name:
            continue
        suffix = path.name[len("09_text_detection") :]  # ".csv" (SST-2) or "_<dataset>.csv"
        detections = pd.read_csv(path)
        flags = _read(r / f"09_text_token_flags{suffix}")
        repaired = _read(r / f"09_text_removal{suffix}")
        exposures = sorted(set(detections["exposure"]) - {"none"})
        rows += [
            row
            for e in exposures
            for row in paired_rows(
                label_detection(detections, e), "1 label detection", e, f"flagged with the true target, {e} vs none"
            )
        ]
        if flags is not None:
            rows += _recovery_rows(detections, flags, exposures)
            rows += _model_detection_rows(detections, flags, exposures, seed)
        if repaired is not None:
            for e in exposures:
                rows += paired_rows(
                    removal(repaired, "token reset", e),
                    "4 removal",
                    f"token reset, {e}",
                    f"DER of the token reset, tokens scanned on the {e} copy vs on the suspect",
                )
    return rows


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def _truth(detections: pd.DataFrame) -> pd.DataFrame:
    """Each zoo model's true target and whether it is backdoored (evaluation side), by model_id."""
    return detections.drop_duplicates("model_id").set_index("model_id")[["true_target", "backdoored"]]


def _recovery_rows(detections: pd.DataFrame, flags: pd.DataFrame, exposures) -> list[dict]:
    f = flags.drop(columns=["true_target", "backdoored"], errors="ignore").join(_truth(detections), on="model_id")
    f = f[f["backdoored"].astype(bool) & f["true_target"].notna()]
    f = f.assign(correct=f["flagged"].astype(bool) & (f["top_label"] == f["true_target"]))
    return [
        row
        for e in exposures
        for row in paired_rows(
            _pairs(f, "correct", e),
            "2 trigger recovery",
            f"token scan, {e}",
            f"the token scan flags the true target, on the {e} copy vs on the suspect",
        )
    ]


def _model_detection_rows(detections: pd.DataFrame, flags: pd.DataFrame, exposures, seed: int) -> list[dict]:
    scores = model_scores(detections, flags).assign(dataset=detections["dataset"].iloc[0])
    rows = []
    for detector, g in scores.groupby("detector", sort=False):
        wide = g.pivot_table(index=["model_id", "backdoored"], columns="exposure", values="score").reset_index()
        if "none" not in wide or wide["backdoored"].nunique() < 2:
            continue
        for e in (e for e in exposures if e in wide):
            rows.append(
                _auc_row(
                    "3 model detection", g["dataset"].iloc[0], f"{detector}, {e}", f"the {detector}", wide, [e], seed
                )
            )
    return rows
