"""What the scanner reads off a user's model: exposure, the two label readings, the model-level probability, and
the trigger for a flagged label (EBYD, Li et al. 2024, Sec. 3, 4.1, 4.2).

- *Exposure*: Clean Unlearning (expose/cul.py) of the user's model on the defense half, `restarts` times (seeds
  0, 1, ...), each read at its own stop (the first epoch whose defense accuracy is <= stop_acc).
- *Reading "reference-free"*: per class, the smallest probe share over the restarts minus 1/K
  (`defenses.label_detection.detect_label` without references); needs nothing but the model and the clean data.
- *Reading "references"*: the same minus the mean share of clean reference models that the scanner trains itself
  with the profile's recipe and exposes by the same CUL (`zoo.references`, seeds 1000, 1001, ...: the notebooks'
  references, so one cache serves both). Only where the model's task is the profile's dataset (same classes and
  image size), since a reference must be a model of the same task; its recipe is ours, not the user's.
- *P(backdoored)*: a logistic regression of "backdoored" on the default reading's score, fitted on the models of
  the committed trained-elsewhere measurement (results/scan_trained_elsewhere.csv) of the same profile; none where
  no such measurement exists.
- *Trigger*: Neural Cleanse (Wang et al. 2019) on the *suspect*, narrowed to the flagged label (notebook 04's
  "CUL label" variant: exposure picks the label, the suspect gives the trigger).

Defender-side: nothing here sees a trigger, a true target or an ASR.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..defenses import all_collapsed, detect_label, shares_at_stop
from ..defenses.trigger_recovery.neural_cleanse import neural_cleanse
from ..expose import clean_unlearn

# the committed results the scan reads, as copies packaged with ebyd_utils (so that a wheel install has them too):
# `python -m ebyd_utils.report` copies them from results/ (`copy_committed`); tests/test_report.py checks that the
# copies are the committed files
MEASURED = Path(__file__).resolve().parent / "measured"
MEASUREMENT_CSV = MEASURED / "scan_trained_elsewhere.csv"
DETECTION_CSV = MEASURED / "03_label_detection.csv"
LOW_RATE_CSV = MEASURED / "12_low_rate_curve.csv"
PACKAGED_CSVS = tuple(p.name for p in (MEASUREMENT_CSV, DETECTION_CSV, LOW_RATE_CSV))
NOT_PACKAGED = "not packaged (python -m ebyd_utils.report copies it from results/)"
READINGS = ("reference-free", "references")
# The reading that decides the verdict, per profile: the one with the fewest false flags on the clean models of the
# trained-elsewhere measurement (then the higher ROC AUC; results/scan_trained_elsewhere_summary.csv, docs/scan.md;
# tests/test_scan.py checks this table against it). Both readings flag at the profile's detection.threshold, set on
# the profile's own zoo before that measurement and never tuned on it. Where the chosen reading cannot be made (no
# references for this task), the scan decides by "reference-free" and says so.
DEFAULT_READINGS = {"smoke": "reference-free", "quick": "references"}


def copy_committed(results_dir, dest=MEASURED) -> list[str]:
    """Copy PACKAGED_CSVS from results_dir into dest (the package's scan/measured/); returns those copied. A file
    absent from results_dir is removed from dest too (the scan then says it is not packaged)."""
    results, dest = Path(results_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in PACKAGED_CSVS:
        if (results / name).exists():
            shutil.copyfile(results / name, dest / name)
            copied.append(name)
        else:
            (dest / name).unlink(missing_ok=True)
    return copied


def default_reading(profile_name: str) -> str:
    return DEFAULT_READINGS.get(profile_name, "reference-free")


@dataclass
class Reading:
    name: str  # "reference-free" or "references"
    label: int  # most suspicious class
    score: float  # its excess share (over 1/K, or over the references' mean share)
    threshold: float
    flagged: bool
    excess: list  # per-class excess shares
    contrast: str  # what the shares were contrasted with


def expose_runs(model, clean, cul, restarts: int, progress: bool = False) -> list:
    """The CUL logs of `restarts` runs (seeds 0..restarts-1) on the clean data's defense half, probe shares
    logged; the user's model itself is left untouched."""
    return [
        clean_unlearn(
            model,
            clean.defense_x,
            clean.defense_y,
            cul,
            clean.num_classes,
            probe_x=clean.probe_x,
            seed=r,
            progress=progress,
        )[1]
        for r in range(restarts)
    ]


def exposed(logs) -> bool:
    return all_collapsed(logs)


def read(name: str, logs, threshold: float, reference_logs=None, contrast: str = "") -> Reading:
    """One reading of the suspect's CUL logs (reference logs: one list of restarts per reference model)."""
    refs = None if reference_logs is None else [[shares_at_stop(g) for g in r] for r in reference_logs]
    det = detect_label([shares_at_stop(log) for log in logs], refs, threshold, exposed=exposed(logs))
    return Reading(name, det.label, det.score, threshold, det.flagged, det.excess, contrast)


def references_fit(profile, classes: list, input_size: int) -> str:
    """Why the profile's references cannot serve this model ("" if they can): they must share its task."""
    from ..data import CIFAR10_CLASSES, _synthetic_classes

    own = {"cifar10": CIFAR10_CLASSES, "synthetic": _synthetic_classes()}.get(profile.data.dataset)
    if own is None or list(classes) != list(own):
        return f"the model's classes are not the {profile.data.dataset} classes the profile's references learn"
    if input_size != 32:
        return f"the references take 32-pixel images, the model {input_size}"
    return ""


def reference_logs(profile, clean, data_dir, cache_dir, device, progress: bool = False) -> tuple[list, dict]:
    """The profile's clean references, trained (or loaded from the cache) and exposed on the scan's clean data:
    (logs per reference, record of what they are and what they cost)."""
    from .. import pipeline as pl
    from .. import zoo

    start = time.perf_counter()
    run = pl.setup(profile, data_dir, str(device), cache_dir, progress=progress)
    refs = zoo.references(run)
    if clean.source == profile.data.dataset:  # the notebooks' own units (same defense and probe images)
        logs = [pl.expose_restarts(run, r) for r in refs]
    else:
        logs = [expose_runs(r.model, clean, profile.cul, profile.detection.restarts) for r in refs]
    record = {
        "n": len(refs),
        "recipe": asdict(profile.train),
        "data": run.data.name,
        "train_seconds_each": [round(float(r.record.get("train_seconds", 0.0)), 1) for r in refs],
        "from_cache": [not r.record.get("computed") for r in refs],
        "seconds": round(time.perf_counter() - start, 1),
    }
    return logs, record


def probability(score: float, profile_name: str, reading: str) -> tuple[float | None, dict]:
    """P(backdoored | score) from a logistic fit on the measured trained-elsewhere models of this profile, and how
    it was calibrated; (None, why) where there is no such measurement."""
    from sklearn.linear_model import LogisticRegression

    how = {"method": "logistic regression of backdoored on the score", "source": str(MEASUREMENT_CSV.name)}
    if not MEASUREMENT_CSV.exists():
        return None, {**how, "note": f"{MEASUREMENT_CSV.name} {NOT_PACKAGED}: not calibrated"}
    table = pd.read_csv(MEASUREMENT_CSV)
    rows = table[(table["profile"] == profile_name) & (table["reading"] == reading) & table["learned"]]
    if rows["backdoored"].nunique() < 2:
        return None, {**how, "note": f"no measured models trained elsewhere at profile {profile_name!r}"}
    x, y = rows[["score"]].to_numpy(float), rows["backdoored"].astype(int).to_numpy()
    mean, std = x.mean(), x.std() or 1.0  # standardised, as core.metrics.calibrated_probabilities (the LOO check)
    fit = LogisticRegression(C=1.0).fit((x - mean) / std, y)
    p = float(fit.predict_proba(np.array([[(score - mean) / std]]))[0, 1])
    clean = rows[~rows["backdoored"].astype(bool)]
    false_flags = f"{int(clean['flagged'].astype(bool).sum())}/{len(clean)}"
    note = (
        f"fitted on {len(rows)} models trained with recipes other than ours ({int(y.sum())} backdoored, "
        f"{int(len(y) - y.sum())} clean: the prior is their mix, not the rate of backdoors in the wild); this "
        f"reading flagged {false_flags} of those clean models"
    )
    return p, {**how, "reading": reading, "profile": profile_name, "n_models": len(rows),
               "false_flags_on_clean": false_flags, "note": note}  # fmt: skip


def recover_trigger(model, images, label: int, epochs: int, seed: int = 0) -> dict:
    """Neural Cleanse on the suspect, narrowed to `label`: mask, pattern, L1 norm, success on the images."""
    result = neural_cleanse(model, images, classes=[label], epochs=epochs, seed=seed, use_bf16=False)
    mask, pattern = result.trigger(label)
    return {
        "label": label,
        "mask": mask,
        "pattern": pattern,
        "mask_l1": float(result.norms[0]),
        "success": float(result.success[0]),
        "seconds": round(result.seconds, 1),
        "epochs": int(result.epochs_run[0]),
    }


def blind_spots() -> dict:
    """What exposure missed in the committed notebook 03 run (results/03_label_detection.csv): the backdoored models
    it did not flag with their target after CUL, by attack and score -- what a clean verdict cannot rule out."""
    if not DETECTION_CSV.exists():
        return {"source": DETECTION_CSV.name, "note": f"{NOT_PACKAGED}; see notebook 03"}
    table = pd.read_csv(DETECTION_CSV)
    cul = table[(table["exposure"] == "CUL") & (table["attack"] != "clean")]
    missed = cul[~cul["correct"].astype(bool)]
    return {
        "source": f"results/{DETECTION_CSV.name}",
        "profile": ", ".join(sorted(set(cul["profile"]))),
        "missed": [
            {"attack": r.attack, "score": round(float(r.score), 4), "threshold": float(r.threshold)}
            for r in missed.itertuples()
        ],
        "n_backdoored": len(cul),
        "low_rate": low_rate_limit(),
    }


def low_rate_limit() -> dict:
    """Where exposure stops seeing, from notebook 12's committed curve (results/12_low_rate_curve.csv): per trigger,
    the lowest poison rate at which notebook 03's rule (the scanner's "references" reading) found the target in most
    seeds with no clean control flagged, and the line the README states."""
    from ..experiments import low_rate_limits

    if not LOW_RATE_CSV.exists():
        return {"source": LOW_RATE_CSV.name, "note": f"{NOT_PACKAGED}; see notebook 12"}
    curve = pd.read_csv(LOW_RATE_CSV)
    lim = low_rate_limits.limits(curve)
    stop = lim[lim["reading"] == "stop"]
    return {
        "source": f"results/{LOW_RATE_CSV.name}",
        "profile": ", ".join(sorted(set(map(str, curve["profile"])))) if "profile" in curve else None,
        "reading": "stop (notebook 03's rule)",
        "lowest_rate_found": {
            r.trigger: None if pd.isna(r.lowest_rate_found) else float(r.lowest_rate_found) for r in stop.itertuples()
        },
        "rates_tried": sorted(float(x) for x in curve["poison_rate"].unique()),
        "lines": low_rate_limits.front_lines(curve),
    }


def clean_accuracy(model, clean) -> float:
    from ..train import accuracy

    return float(accuracy(model, clean.defense_x, clean.defense_y.to(clean.defense_y.device)))


def check_accuracy(acc: float, num_classes: int, hint: str) -> None:
    """A model that does not do its task on the clean data cannot be exposed: CUL has no clean function to erase."""
    floor = 1 / num_classes + 0.25 * (1 - 1 / num_classes)
    if acc < floor:
        raise ValueError(
            f"the model scores {acc:.2f} on your labelled clean data, near chance (1/{num_classes}); the scan needs "
            f">= {floor:.2f}: CUL erases a working clean function. Check {hint}"
        )


def as_numpy_image(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
