"""The paper's other exposures (EBYD, Li et al. 2024, Sec. 3: fine-tuning, sparsification, weight perturbation
beside Clean Unlearning): notebook 07's flow, evaluation side. Every method of `expose/` exposes every model --
the zoo's suspects, its clean controls and the defender's references alike -- and the same label-detection rule
reads each, against references exposed by the *same* method (`defenses/label_detection.py`); the truth comes
afterwards. One row per (method, model): CA, ASR and RA of the exposed model, the probe share of the true
target, label detection (flagged, correct, score), the stop step and seconds. Per method, the score's ROC AUC
over the models (backdoored vs clean) with its bootstrap interval: the exposure detector of notebook 05 read
after this method instead of CUL. "none" reads the un-exposed models, the baseline every method must beat.
"""

from __future__ import annotations

import time

import pandas as pd

from ..core.metrics import judge
from ..core.progress import eta, report
from ..defenses import all_collapsed, detect_exposed, detect_label, shares_at_stop
from ..expose import EXPOSURES, KNOBS
from ..pipeline import Run, Suspect, context
from ..train import class_shares
from ..zoo import section_rows
from .exposure_units import NAMES, exposures_of, method_settings

METHODS = ("none", *EXPOSURES)  # "none": the un-exposed models, the baseline
# Which models each profile's notebook 07 exposes when its parameters say None: per-attack rows of these attacks
# (empty: all) and seeds with their clean controls, the drawn rows of the model-detection zoo (more clean models
# and random triggers) when `drawn`; restarts per seeded method (None: the profile's).
SECTION = {
    "smoke": {"attacks": ["badnets"], "seeds": [0], "restarts": 1, "drawn": False},
    "quick": {"attacks": [], "seeds": [0], "restarts": None, "drawn": True},
    "paper": {"attacks": [], "seeds": [0, 1, 2], "restarts": None, "drawn": True},
}


def section(profile_name: str, **given) -> dict:
    """The profile's section (SECTION; quick's for another profile) with each given parameter that is not None."""
    base = SECTION.get(profile_name, SECTION["quick"])
    unknown = set(given) - set(base)
    if unknown:
        raise ValueError(f"unknown section parameter(s) {sorted(unknown)}; allowed: {sorted(base)}")
    return {k: (base[k] if given.get(k) is None else given[k]) for k in base}


def section_table(table: pd.DataFrame, sec: dict) -> pd.DataFrame:
    """The zoo rows notebook 07 exposes: per-attack rows of sec's attacks and seeds (clean controls included),
    then the drawn rows when sec["drawn"]."""
    rows = section_rows(table, tuple(sec["seeds"]), tuple(sec["attacks"]))
    drawn = table[table["role"] == "drawn"] if sec["drawn"] else table.iloc[:0]
    return pd.concat([rows, drawn], ignore_index=True)


def check_methods(methods) -> tuple:
    """The notebook's METHODS: a non-empty list of names from METHODS ("none" and every method of expose/)."""
    unknown = [m for m in methods or () if m not in METHODS]
    if not methods or unknown:
        raise ValueError(f"unknown or no exposure method(s) {unknown or methods!r}; choose from {list(METHODS)}")
    return tuple(methods)


def reference_runs(run: Run, references, method: str, overrides=None, defense=None) -> list:
    """Each reference's restarts under the method (the defender's clean models, exposed as the suspects are)."""
    return [exposures_of(run, r, method, overrides, defense, evaluate_it=False) for r in references]


def reading(run: Run, suspect: Suspect, method: str, logs, reference_logs, fixed: bool = False) -> dict:
    """One model under one method: label detection against the references (its restarts' shares at their stop
    steps, each restart read at its own), and what the evaluation measured on restart 0. `fixed`: the runs had
    no stop rule (a fixed number of steps), so each is read at its last step, collapsed or not."""
    thr = run.profile.detection.threshold
    det = detect_exposed(logs, reference_logs, thr, fixed)
    first = logs[0]
    stop = first.attrs.get("stop_epoch")
    target = suspect.attack.single_target if suspect.attack is not None else None
    at_stop = shares_at_stop(first)
    ev = first.attrs.get("evaluation", {})
    return {
        "method": method,
        "knob": KNOBS[method],
        "strength_at_stop": float(first.loc[first["epoch"] == stop, "strength"].iloc[0])
        if "strength" in first and stop is not None
        else None,
        "stop_epochs": ",".join(str(log.attrs.get("stop_epoch")) for log in logs),
        "collapsed": all_collapsed(logs),
        "CA": ev.get("CA"),
        "ASR": ev.get("ASR"),
        "RA": ev.get("RA"),
        "target_share": float(at_stop[target]) if target is not None else None,
        "detected_label": det.label,
        "score": det.score,
        "flagged": det.flagged,
        "verdict": det.verdict,
        "measurable": det.verdict != "not exposed",
        "threshold": thr,
        "restarts": len(logs),
        "seconds": sum(float(log.attrs.get("seconds", 0.0)) for log in logs),
    }


def plain_reading(run: Run, suspect: Suspect, reference_shares) -> dict:
    """The same rule on the un-exposed model's shares (method "none")."""
    data, thr = run.data, run.profile.detection.threshold
    shares = class_shares(suspect.model, data.probe_x, data.num_classes)
    det = detect_label(shares, reference_shares, thr)
    target = suspect.attack.single_target if suspect.attack is not None else None
    return {
        "method": "none",
        "knob": "",
        "collapsed": True,
        "CA": suspect.record.get("CA"),
        "ASR": suspect.record.get("ASR"),
        "RA": suspect.record.get("RA"),
        "target_share": float(shares[target]) if target is not None else None,
        "detected_label": det.label,
        "score": det.score,
        "flagged": det.flagged,
        "verdict": det.verdict,
        "measurable": True,
        "threshold": thr,
        "restarts": 0,
        "seconds": 0.0,
    }


def method_table(run: Run, rows: pd.DataFrame, suspects, references, methods) -> pd.DataFrame:
    """Every method on every model (rows: their zoo rows, for role, target and rate), references exposed by the
    same method; the truth added last (`backdoored`, `correct`: flagged with the true target)."""
    methods = check_methods(methods)
    data = run.data
    out, start = [], time.perf_counter()
    for k, method in enumerate(methods, 1):
        if method == "none":
            ref_shares = [class_shares(r.model, data.probe_x, data.num_classes) for r in references]
            readings = [plain_reading(run, s, ref_shares) for s in suspects]
        else:
            ref_logs = reference_runs(run, references, method)
            readings = [reading(run, s, method, exposures_of(run, s, method), ref_logs) for s in suspects]
            setting = method_settings(run.profile, method)[KNOBS[method]]
            readings = [{**r, "knob_value": setting} for r in readings]
        for row, s, r in zip(rows.to_dict("records"), suspects, readings):
            out.append(
                {
                    **context(run),
                    "model_id": s.model_id,
                    "role": row["role"],
                    "attack": s.label,
                    "seed": s.seed,
                    "true_target": s.attack.single_target if s.attack is not None else None,
                    "rate": row["rate"],
                    **r,
                }
            )
        report(f"exposure methods {eta(k, len(methods), time.perf_counter() - start)}")
    table = pd.DataFrame(out).astype({"true_target": "Int64"})
    return table.assign(
        backdoored=table["attack"] != "clean",
        correct=(table["flagged"] & (table["detected_label"] == table["true_target"])).fillna(False).astype(bool),
    )


def method_summary(table: pd.DataFrame, bootstrap: int = 2000, seed: int = 0, fpr: float = 0.05) -> pd.DataFrame:
    """Per method: detection power (all-to-one backdoored models flagged with their target), false flags on clean
    models, models it never exposed, the score's ROC AUC with its 95% bootstrap interval (NaN with one class),
    median seconds per model, n."""
    out = []
    for method, g in table.groupby("method", sort=False):
        one_target = g["backdoored"] & g["true_target"].notna()
        clean = ~g["backdoored"]
        auc = (
            judge(g["backdoored"].astype(int), g["score"], g["flagged"], bootstrap, seed, fpr)
            if g["backdoored"].nunique() == 2
            else {}
        )
        out.append(
            {
                "method": method,
                "name": NAMES[method],
                "detection_power": g.loc[one_target, "correct"].mean(),
                "false_flags_on_clean": g.loc[clean, "flagged"].mean(),
                "n_detected": int(g.loc[one_target, "correct"].sum()),
                "n_false_flags": int(g.loc[clean, "flagged"].sum()),
                "not_exposed": int((~g["measurable"]).sum()),
                "roc_auc": auc.get("roc_auc"),
                "auc_low": auc.get("auc_low"),
                "auc_high": auc.get("auc_high"),
                "median_seconds": g["seconds"].median(),
                "n_backdoored": int(one_target.sum()),
                "n_clean": int(clean.sum()),
                "n_models": len(g),
                "threshold": float(g["threshold"].iloc[0]),
            }
        )
    return pd.DataFrame(out)


def verdict_lines(table: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """Plain lines from the tables: per method, power and false flags with n and the threshold; per attack, which
    methods flag its models with the target (and where CUL is not the best)."""
    lines = []
    thr = float(summary["threshold"].iloc[0])
    for r in summary.itertuples():
        auc = (
            "AUC n/a (one class)" if pd.isna(r.roc_auc) else f"AUC {r.roc_auc:.2f} [{r.auc_low:.2f}, {r.auc_high:.2f}]"
        )
        lines.append(
            f"{r.name}: flags {r.n_detected} of {r.n_backdoored} backdoored models with "
            f"their target and {r.n_false_flags} of {r.n_clean} clean models (threshold "
            f"{thr}); {auc}; {r.not_exposed} of {r.n_models} models never reached its stop rule."
        )
    backdoored = table[table["backdoored"] & (table["method"] != "none")]
    for attack, g in backdoored.groupby("attack", sort=False):
        hit = g["correct"] if g["true_target"].notna().all() else g["flagged"]
        per = g.assign(hit=hit).groupby("method", sort=False).agg(hits=("hit", "sum"), n=("hit", "size"))
        exposing = [f"{NAMES[m]} {int(r.hits)} of {int(r.n)}" for m, r in per.iterrows() if r.hits > 0]
        best = per["hits"].max()
        note = ""
        if "cul" in per.index and best > per.loc["cul", "hits"]:
            better = [NAMES[m] for m, r in per.iterrows() if r.hits == best]
            note = f" CUL is not the best here ({int(per.loc['cul', 'hits'])}); best: {', '.join(better)}."
        what = "with the target" if g["true_target"].notna().all() else "at all (all-to-all)"
        lines.append(
            f"{attack}: flagged {what} by "
            + (", ".join(exposing) if exposing else f"no method (threshold {thr})")
            + "."
            + note
        )
    return lines
