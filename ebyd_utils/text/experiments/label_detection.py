"""Text label detection with and without each exposure (EBYD Sec. 4.1 on text; the image track's
`experiments/label_detection.py`): the image rule reused unchanged (`defenses/label_detection.py`: per class, the
share of the defender's probe rows at the exposure's stop, minus the clean references' mean share; flagged at
the threshold), read on both of `exposure.READINGS`, the clean control and the references beside every number.
"""

from __future__ import annotations

import pandas as pd

from ...defenses import detect_label
from ..pipeline import TextSetup, context
from .exposure import READINGS


def all_detections(setup: TextSetup, exposed: dict) -> pd.DataFrame:
    """detection_rows of every exposure, the no-exposure rows once."""
    tables = [detection_rows(setup, e, *exposed[e.name]) for e in setup.profile.exposures]
    table = pd.concat(tables, ignore_index=True)
    # every exposure's table repeats the models' own ("none") rows: keep them once per model
    return table.drop_duplicates(["model_id", "exposure", "reading"], ignore_index=True)


def detection_rows(setup: TextSetup, exposure, zoo_readings, reference_readings) -> pd.DataFrame:
    """Label detection by both readings, with and without the exposure, for every model of the zoo.

    Columns: exposure ("none" or its name), reading, the detected label, its score (excess over the references),
    flagged, and the excess on every label (excess_<c>: the clean control's drift is read there); then the truth
    (evaluation): true_target (an integer, empty for clean models), backdoored, correct, target_excess (the excess
    on the model's own target); the exposure's stop epoch, the exposed model's test CA / ASR (monitor) and beside
    the ASR `clean_target_share`, the share of clean probe rows the model already sends to the target: on a model
    that sends every row there, an ASR of 1 says nothing of the trigger. `measurable` is False (with its reason)
    where the exposure never reached its stop: the reading is not made, rather than read as clean."""
    thr = setup.profile.detection.threshold
    rows = []
    for r in zoo_readings:
        s, log = r["suspect"], r["log"]
        stop = log.attrs.get("stop_epoch")
        at_stop = log.loc[log["epoch"] == stop].iloc[0] if stop is not None else log.iloc[-1]
        target = s.attack.target if s.attack is not None else None
        for exposure_name, which in ((exposure.name, "exposed"), ("none", "plain")):
            for reading in READINGS:
                refs = [ref[which][reading] for ref in reference_readings]
                exposed = bool(log.attrs.get("collapsed")) if which == "exposed" else True
                det = detect_label(r[which][reading], refs, thr, exposed=exposed)
                rows.append(
                    {
                        **context(setup),
                        "model_id": s.model_id,
                        "attack": s.label,
                        "seed": s.seed,
                        "exposure": exposure_name,
                        "reading": reading,
                        "detected_label": det.label,
                        "score": det.score,
                        "flagged": det.flagged,
                        "verdict": det.verdict,
                        "threshold": thr,
                        **{f"excess_{c}": e for c, e in enumerate(det.excess)},
                        "true_target": target,
                        "backdoored": s.attack is not None,
                        "correct": bool(det.flagged and det.label == target),
                        "target_excess": det.excess[target] if target is not None else None,
                        "measurable": exposed,
                        "unmeasurable_reason": "" if exposed else "the exposure never reached its stop rule",
                        "stop_epoch": stop if which == "exposed" else None,
                        "CA": at_stop.get("CA") if which == "exposed" else s.record["CA"],
                        "ASR": (at_stop.get("ASR") if which == "exposed" else s.record.get("ASR")),
                        "clean_target_share": float(r[which]["share"][target]) if target is not None else None,
                    }
                )
    return pd.DataFrame(rows).astype({"true_target": "Int64", "stop_epoch": "Int64"})


def summary(detections: pd.DataFrame) -> pd.DataFrame:
    """Per (exposure, reading): backdoored models flagged with their target, clean models flagged, the mean excess
    of backdoored models on their own target, and the clean control's mean excess on those same labels (the
    number the first must beat)."""
    rows = []
    for (exposure, reading), g in detections.groupby(["exposure", "reading"], sort=False):
        bad, clean = g[g["backdoored"]], g[~g["backdoored"]]
        on_same = [clean[f"excess_{int(t)}"].mean() for t in bad["true_target"]] if len(clean) else []
        rows.append(
            {
                "exposure": exposure,
                "reading": reading,
                "backdoored": len(bad),
                "detected_with_target": float(bad["correct"].mean()) if len(bad) else None,
                "clean_flagged": float(clean["flagged"].mean()) if len(clean) else None,
                "mean_target_excess": float(bad["target_excess"].mean()) if len(bad) else None,
                "clean_excess_same_labels": float(sum(on_same) / len(on_same)) if on_same else None,
            }
        )
    return pd.DataFrame(rows)


def attack_lines(detections: pd.DataFrame, reading: str = "share") -> list[str]:
    """Plain lines for `reading`: the clean controls' largest score beside the threshold, per exposure, then per
    attack and exposure the models flagged with their target out of n, with their scores; a model whose exposure
    never stopped is counted apart, never as a miss."""
    rows = detections[detections["reading"] == reading]
    thr = float(rows["threshold"].iloc[0])
    lines = []
    for exposure, g in rows[~rows["backdoored"]].groupby("exposure", sort=False):
        lines.append(
            f"clean ({exposure}): {int(g['flagged'].sum())} of {len(g)} flagged; largest score "
            f"{g['score'].max():.3f} against the threshold {thr}."
        )
    for attack, g in rows[rows["backdoored"]].groupby("attack", sort=False):
        parts = []
        for exposure, e in g.groupby("exposure", sort=False):
            unread = int((~e["measurable"]).sum())
            parts.append(
                f"{exposure}: {int(e['correct'].sum())} of {len(e) - unread} flagged with the target "
                f"(scores {', '.join(f'{v:.2f}' for v in e['score'])})"
                + (f", {unread} never stopped" if unread else "")
            )
        lines.append(f"{attack}: " + "; ".join(parts) + ".")
    return lines
