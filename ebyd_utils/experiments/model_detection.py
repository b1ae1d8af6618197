"""Backdoor model detection over a zoo, with and without exposure (EBYD, Li et al. 2024, Sec. 4.3): notebook 05's
flow, evaluation side. Every detector reads one model at a time, defender-side (`defenses/`); this module runs
it on every model of the zoo -- once on the suspect, once on its exposed model (CUL restart 0, the run notebooks
02-04 use) -- and adds the truth afterwards. One row per (model, detector, exposure): a score (larger = more
suspicious), the detector's own default flag, the label it names, and its seconds.

Detectors and their default rules:
- "exposure": the spine's score, the excess share of the most promoted label over the clean references
  (`defenses/label_detection.py`; on the suspect, the same excess on its un-exposed predictions); flag: excess
  >= detection.threshold on an exposed model;
- "unlearning": the official code's detector, the variance of class shares after unlearning
  (`defenses/unlearning_detector.py`); flag: > 0.01;
- "nc": Neural Cleanse's anomaly index, the largest over the classes whose mask norm is below the median
  (`defenses/neural_cleanse.py`, the inversions of notebook 04, reused from the cache); flag: a flagged label;
- "mmbd": MM-BD's maximum-margin p-value as -log10 p (`defenses/mm_bd.py`); flag: p <= 0.05.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from ..config import Profile, as_dict
from ..core.metrics import judge
from ..core.progress import eta, report
from ..core.units import cached_unit
from ..defenses import all_collapsed, detect_label, shares_at_stop
from ..defenses.model_detection.mm_bd import MMBDResult, make_config, mm_bd
from ..defenses.model_detection.unlearning_detector import share_variance
from ..defenses.outliers import median
from ..pipeline import Run, context, expose
from ..train import class_shares
from ..zoo import section_rows
from . import trigger_recovery as recovery
from .model_detection_lines import RULES, attack_lines, dependence_lines, verdicts  # noqa: F401 (read here by 05)

DETECTORS = ("exposure", "unlearning", "nc", "mmbd")
MAX_LOG10 = 16.0  # -log10 p is capped here (p below 1e-16 is 0 in float64)


def zoo_rows(profile: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """The models a detector is judged on: the per-attack suspects of model_detection.zoo_seeds and .attacks
    (all if empty) and every drawn model; the defender's references are not scored (they are the defender's own)."""
    md = profile.model_detection
    suspects = section_rows(table, md.zoo_seeds, md.attacks)
    return pd.concat([suspects, table[table["role"] == "drawn"]], ignore_index=True)


def check_detectors(detectors) -> tuple:
    unknown = set(detectors) - set(DETECTORS)
    if unknown or not detectors:
        raise ValueError(f"unknown or no detector(s) {sorted(unknown)}; choose from {list(DETECTORS)}")
    return tuple(detectors)


# ------------------------------------------------------------------------------------------ MM-BD unit
def mmbd_settings(profile: Profile) -> dict:
    md = profile.model_detection
    return as_dict(make_config(steps=md.mmbd_steps, starts=md.mmbd_starts))


def run_mmbd(run: Run, model, model_key: str, label: str = "") -> MMBDResult:
    """MM-BD on one model (defender side, data-free): a cached unit (kind "mmbd") under its settings, the
    model's unit key and the seed."""
    profile, data = run.profile, run.data
    settings = mmbd_settings(profile)
    params = {"settings": settings, "model": model_key, "seed": profile.model_detection.seed}
    shape = tuple(data.train_x.shape[1:])

    def compute():
        return mm_bd(
            model, shape, data.num_classes, seed=params["seed"], progress=False, desc=label or "MM-BD", **settings
        ).to_tensors()

    unit = cached_unit("mmbd", params, compute, run.cache_dir, device=run.device, label=label or "MM-BD")
    return MMBDResult.from_tensors(unit.tensors, unit.info)


# ---------------------------------------------------------------------------------------- scoring
def nc_reading(result) -> tuple[float, bool, int]:
    """(model-level anomaly index, flagged, named label) of a Neural Cleanse result: the largest index among
    classes whose norm is below the median (0 if none), NC's own flag."""
    label, flagged = recovery.named_label(result)
    below = result.norms < median(result.norms)
    below = below | (result.norms == result.norms.min())  # the smallest norm always counts
    index = float(result.anomaly[below].max()) if below.any() else 0.0
    return (index if math.isfinite(index) else 1e6), bool(flagged), int(label)


def model_scores(run: Run, rows: pd.DataFrame, suspects, logs, references, reference_logs) -> pd.DataFrame:
    """Every detector of the profile on every model, on the suspect ("none") and on the exposed model ("CUL").

    Args:
        run: the flow's context; profile.model_detection names the detectors and budgets.
        rows, suspects, logs: the scored models' zoo rows, the models, and their CUL restarts (`zoo.exposures`).
        references, reference_logs: the defender's clean references and their CUL restarts.
    Returns:
        one row per (model, detector, exposure): model_id, role, attack, seed, target, rate, backdoored (the
        evaluation's truth), score, flagged, label, seconds, label_is_target."""
    profile, data = run.profile, run.data
    detectors = check_detectors(profile.model_detection.detectors)
    thr = profile.detection.threshold
    reference_shares = [class_shares(r.model, data.probe_x, data.num_classes) for r in references]
    reference_stop = [[shares_at_stop(log) for log in ref] for ref in reference_logs]
    out, start = [], time.perf_counter()
    for k, (row, suspect, runs) in enumerate(zip(rows.to_dict("records"), suspects, logs), 1):
        exposed_model, log0 = expose(run, suspect)
        models = {"none": (suspect.model, suspect.key), "CUL": (exposed_model, log0.attrs["key"])}
        plain_shares = class_shares(suspect.model, data.probe_x, data.num_classes)
        cul_seconds = sum(float(log.attrs.get("seconds", float("nan"))) for log in runs)
        base = {
            "model_id": suspect.model_id,
            "role": row["role"],
            "attack": suspect.label,
            "seed": suspect.seed,
            "target": row["target"],
            "rate": row["rate"],
            "backdoored": suspect.attack is not None,
        }
        for exposure, (model, key) in models.items():
            exposed = exposure == "CUL"
            for detector in detectors:
                tic = time.perf_counter()
                if detector == "exposure":
                    det = (
                        detect_label(
                            [shares_at_stop(log) for log in runs], reference_stop, thr, exposed=all_collapsed(runs)
                        )
                        if exposed
                        else detect_label(plain_shares, reference_shares, thr)
                    )
                    reading, seconds = (det.score, det.flagged, det.label), cul_seconds if exposed else None
                elif detector == "unlearning":
                    sv = share_variance(shares_at_stop(log0) if exposed else plain_shares)
                    reading, seconds = (sv.score, sv.flagged, sv.label), log0.attrs.get("seconds") if exposed else None
                elif detector == "nc":
                    result = recovery.invert(run, "nc", model, key, label=f"NC on {suspect.model_id} ({exposure})")
                    reading, seconds = nc_reading(result), result.seconds
                else:
                    result = run_mmbd(run, model, key, f"MM-BD on {suspect.model_id} ({exposure})")
                    p = max(result.p_value, 0.0)
                    reading = (min(-math.log10(p), MAX_LOG10) if p > 0 else MAX_LOG10, result.flagged, result.label)
                    seconds = result.seconds
                score, flagged, label = reading
                out.append(
                    {
                        **context(run),
                        **base,
                        "detector": detector,
                        "exposure": exposure,
                        "score": float(score),
                        "flagged": bool(flagged),
                        "label": int(label),
                        "seconds": float(seconds) if seconds is not None else time.perf_counter() - tic,
                    }
                )
        report(f"model detection {eta(k, len(rows), time.perf_counter() - start)}")
    table = pd.DataFrame(out).astype({"target": "Int64"})
    return table.assign(
        label_is_target=(table["backdoored"] & (table["label"] == table["target"])).fillna(False).astype(bool)
    )


def zoo_results(run: Run, rows: pd.DataFrame, suspects) -> pd.DataFrame:
    """The zoo as it was trained: model id, attack, target, rate, seed, CA, ASR (evaluation side)."""
    return pd.DataFrame(
        [
            {
                **context(run),
                "model_id": s.model_id,
                "role": row["role"],
                "attack": s.label,
                "target": row["target"],
                "rate": row["rate"],
                "seed": s.seed,
                "CA": s.record.get("CA"),
                "ASR": s.record.get("ASR"),
                "attack_params": row["attack_params"],
            }
            for row, s in zip(rows.to_dict("records"), suspects)
        ]
    ).astype({"target": "Int64"})


# ---------------------------------------------------------------------------------------- reading
def per_attack(scores: pd.DataFrame) -> pd.DataFrame:
    """Per detector, exposure and attack (clean included): models, share flagged by the default rule, mean
    score. For the clean rows the share flagged is the false-positive rate."""
    return (
        scores.groupby(["detector", "exposure", "attack"], sort=False)
        .agg(models=("score", "size"), flagged=("flagged", "mean"), mean_score=("score", "mean"))
        .reset_index()
    )


def missed(per_attack_table: pd.DataFrame, below: float = 0.5) -> dict:
    """{(detector, exposure): [attacks whose models the default rule flags less than `below` of the time]}."""
    rows = per_attack_table[(per_attack_table["attack"] != "clean") & (per_attack_table["flagged"] < below)]
    return {key: list(g["attack"]) for key, g in rows.groupby(["detector", "exposure"], sort=False)}


def subset_metrics(scores: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """The AUC on parts of the zoo: the per-attack rows (default triggers, target 0), the drawn rows
    (drawn triggers, targets and rates) and all together -- how the result depends on the zoo (each part judged
    as metrics_table judges the whole, with the profile's bootstrap, seed and FPR)."""
    md = profile.model_detection
    rows = []
    parts = {
        "per-attack rows": scores["role"] == "suspect",
        "drawn rows": scores["role"] == "drawn",
        "all": np.ones(len(scores), dtype=bool),
    }
    for part, keep in parts.items():
        subset = scores[keep]
        for (detector, exposure), g in subset.groupby(["detector", "exposure"], sort=False):
            if g["backdoored"].nunique() < 2:
                continue
            rows.append(
                {
                    "zoo": part,
                    "detector": detector,
                    "exposure": exposure,
                    **judge(
                        g["backdoored"].astype(int),
                        g["score"],
                        g["flagged"].astype(bool),
                        md.bootstrap,
                        md.seed,
                        md.fpr,
                    ),
                }
            )
    return pd.DataFrame(rows)


def base_rate_brier(scores: pd.DataFrame) -> float:
    """The Brier score of always answering the zoo's share of backdoored models, p (1 - p): what a calibrated
    detector must beat on this zoo's balance."""
    models = scores.drop_duplicates("model_id")
    p = float(models["backdoored"].mean())
    return p * (1 - p)
