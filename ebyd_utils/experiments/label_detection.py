"""Backdoor label detection with and without exposure (EBYD, Li et al. 2024, Sec. 4.1): notebook 03's flow,
evaluation side. The rule itself is the defender's (`defenses/label_detection.py`: the excess share of a label
over clean references, read at each CUL run's stop); this module hands it only class shares, once from the
exposed models and once from the models as they are, and adds the truth afterwards (`backdoored`, `correct`).
"""

from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score

from ..config import Profile
from ..defenses import detect_exposed, detect_label
from ..pipeline import Run, Suspect, context
from ..train import class_shares
from ..zoo import section_rows


def suspect_rows(profile: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """The zoo rows notebook 03 reads: the suspects of detection.zoo_seeds and detection.attacks (all if empty)."""
    return section_rows(table, profile.detection.zoo_seeds, profile.detection.attacks)


def detection_rows(
    run: Run, suspect: Suspect, logs, reference_logs, reference_clean_shares, clean_shares
) -> list[dict]:
    """Label detection with and without exposure, as plain records (evaluation adds the truth).

    logs: the suspect's CUL restarts; reference_logs: one list of restarts per reference model;
    *_clean_shares: class shares of the un-exposed models on the probe images."""
    thr = run.profile.detection.threshold
    with_cul = detect_exposed(logs, reference_logs, thr)
    without = detect_label(clean_shares, reference_clean_shares, thr)
    rows = []
    for exposure, det in (("CUL", with_cul), ("none", without)):
        rows.append(
            {
                "model_id": suspect.model_id,
                "attack": suspect.label,
                "seed": suspect.seed,
                "exposure": exposure,
                "true_target": suspect.attack.single_target if suspect.attack else None,
                "detected_label": det.label,
                "score": det.score,
                "flagged": det.flagged,
                "verdict": det.verdict,
                "measurable": det.verdict != "not exposed",
                "unmeasurable_reason": "CUL never reached its stop rule in every restart"
                if det.verdict == "not exposed"
                else "",
                "threshold": det.threshold,
                "stop_epochs": ",".join(str(log.attrs.get("stop_epoch")) for log in logs),
            }
        )
    return rows


def detection_table(run: Run, zoo, zoo_logs, references, reference_logs) -> pd.DataFrame:
    """detection_rows for every model of the zoo (with and without CUL), with the evaluation's truth:
    `backdoored`, and `correct` = flagged with the true target (an integer column, empty for clean and
    all-to-all models). A model whose CUL never collapsed is `measurable` False with its reason: not read, rather
    than read as clean.

    Args:
        run: the flow's context; its profile's detection settings (threshold, restarts) apply.
        zoo, zoo_logs: the suspects and, per suspect, its CUL restarts (`zoo.exposures`).
        references, reference_logs: the defender's clean references and their CUL restarts.
    Returns:
        one row per model and exposure ("CUL", "none"): model_id, attack, seed, detected_label, score, flagged,
        verdict, measurable, threshold, true_target, backdoored, correct."""
    data = run.data
    reference_clean_shares = [class_shares(r.model, data.probe_x, data.num_classes) for r in references]
    rows = [
        {**context(run), **row}
        for s, logs in zip(zoo, zoo_logs)
        for row in detection_rows(
            run, s, logs, reference_logs, reference_clean_shares, class_shares(s.model, data.probe_x, data.num_classes)
        )
    ]
    table = pd.DataFrame(rows).astype({"true_target": "Int64"})
    return table.assign(
        backdoored=table["attack"] != "clean",
        correct=(table["flagged"] & (table["detected_label"] == table["true_target"])).fillna(False).astype(bool),
    )


def detection_summary(detections: pd.DataFrame) -> pd.DataFrame:
    """Per exposure: share of all-to-one backdoored models flagged with the right target, share of clean models
    flagged, the ROC AUC of the score (backdoored vs clean, all-to-all models included) and, for all-to-all
    models (no single target to name), the share flagged at all (NaN when the zoo has none)."""

    def one_target(g):
        return g["backdoored"] & g["true_target"].notna()

    return pd.DataFrame(
        [
            {
                "exposure": exposure,
                "detection_accuracy": g.loc[one_target(g), "correct"].mean(),
                "false_flags_on_clean": g.loc[~g["backdoored"], "flagged"].mean(),
                "all_to_all_flagged": g.loc[g["backdoored"] & ~one_target(g), "flagged"].mean(),
                "roc_auc": roc_auc_score(g["backdoored"], g["score"]),
                "n_backdoored": g["backdoored"].sum(),
                "n_clean": (~g["backdoored"]).sum(),
            }
            for exposure, g in detections.groupby("exposure")
        ]
    ).set_index("exposure")


def attack_lines(detections: pd.DataFrame) -> list[str]:
    """Plain lines: first the clean controls' largest score beside the threshold (what "not flagged" means here),
    then per attack, after CUL and without: models flagged with their true target (any label for all-to-all) out
    of n, and their scores. A model CUL never exposed is counted apart, never as a miss."""
    thr = float(detections["threshold"].iloc[0])
    clean = detections[~detections["backdoored"]]
    lines = []
    for exposure, g in clean.groupby("exposure", sort=False):
        lines.append(
            f"clean ({exposure}): {int(g['flagged'].sum())} of {len(g)} flagged; largest score "
            f"{g['score'].max():.3f} against the threshold {thr}."
        )
    for attack, g in detections[detections["backdoored"]].groupby("attack", sort=False):
        parts = []
        for exposure, e in g.groupby("exposure", sort=False):
            hit = e["correct"] if e["true_target"].notna().all() else e["flagged"]
            unread = int((~e["measurable"]).sum()) if "measurable" in e else 0
            scores = ", ".join(f"{v:.2f}" for v in e["score"])
            parts.append(
                f"{exposure}: {int(hit.sum())} of {len(e) - unread} flagged"
                + (" with the target" if e["true_target"].notna().all() else "")
                + f" (scores {scores})"
                + (f", {unread} not exposed" if unread else "")
            )
        lines.append(f"{attack}: " + "; ".join(parts) + ".")
    return lines
