"""The text zoo and what exposure does to it: label detection with and without each exposure, the clean
control and the clean references beside every number.

The image track's reading (EBYD Sec. 4.1, defenses/label_detection.py) is reused unchanged: per class, the
share of the defender's clean probe rows predicted as that class at the exposure's stop point, minus the clean
references' mean share; a label is flagged when that excess reaches the threshold. Text adds a second,
softer reading of the same exposed model: the mean predicted *probability* of each class (instead of the
argmax share), which moves before a whole row flips. Both are defender-side: suspect model, clean defense and
probe rows, clean references the defender trained. The evaluation side adds the truth (target, ASR).
"""
from __future__ import annotations

import pandas as pd
import torch

from ..defenses import detect_label
from ..train import outputs, shares_of
from .config import REFERENCE_SEED
from .pipeline import TextSetup, context, expose_text, train_text_suspect

READINGS = ("share", "soft")   # argmax class shares; mean class probabilities


def text_zoo(setup: TextSetup, progress: bool = True) -> tuple[list, list]:
    """(suspects, references): every attack of the profile at every seed, a clean control per clean seed, and
    the defender's clean references."""
    p = setup.profile
    suspects = [train_text_suspect(setup, attack, seed, progress) for seed in p.seeds for attack in p.attacks]
    suspects += [train_text_suspect(setup, None, seed, progress) for seed in p.clean_seeds]
    references = [train_text_suspect(setup, None, REFERENCE_SEED + i, progress)
                  for i in range(p.detection.n_reference)]
    return suspects, references


def probe_outputs(model, tokens) -> torch.Tensor:
    """Softmax probabilities (N, K) of `tokens` (train.outputs: the batches and autocast of train.predict, so
    their argmax is predict's)."""
    return outputs(model, tokens).float().softmax(1).cpu()


def readings(setup: TextSetup, model) -> dict:
    """Both readings of one model on the probe rows, from one pass."""
    probs = probe_outputs(model, setup.probe)
    return {"share": shares_of(probs.argmax(1), setup.data.num_classes), "soft": probs.sum(0) / len(probs)}


def exposed_readings(setup: TextSetup, suspects, exposure, progress: bool = True, plain: dict | None = None) -> list:
    """For each model: the exposure's log and both readings of the exposed model (and of the model itself;
    `plain` maps a model key to those readings when they were read already)."""
    out = []
    for s in suspects:
        exposed, log = expose_text(setup, s, exposure, monitor=True, progress=progress)
        own = plain[s.key] if plain and s.key in plain else readings(setup, s.model)
        out.append({"suspect": s, "log": log, "model": exposed, "exposed": readings(setup, exposed), "plain": own})
    return out


def expose_zoo(setup: TextSetup, suspects, references, progress: bool = True) -> dict:
    """Every exposure of the profile on every model: {exposure name: (zoo readings, reference readings)}; each
    model itself is read once, whatever the number of exposures."""
    plain = {s.key: readings(setup, s.model) for s in (*suspects, *references)}
    return {e.name: (exposed_readings(setup, suspects, e, progress, plain),
                     exposed_readings(setup, references, e, progress, plain)) for e in setup.profile.exposures}


def all_detections(setup: TextSetup, exposed: dict) -> pd.DataFrame:
    """detection_rows of every exposure, the no-exposure rows once."""
    tables = [detection_rows(setup, e, *exposed[e.name]) for e in setup.profile.exposures]
    table = pd.concat(tables, ignore_index=True)
    return table.drop_duplicates(["attack", "seed", "exposure", "reading"], ignore_index=True)


def log_table(setup: TextSetup, exposed: dict) -> pd.DataFrame:
    """Every exposure's per-epoch log: exposure, attack, seed, role, target (the attack's; empty for clean
    models), epoch, defense_acc, share_<c> (probe rows sent to each label), target_share (to the model's own
    target) and the monitor's CA / ASR (evaluation)."""
    k = setup.data.num_classes
    frames = []
    for name, (zoo_readings, reference_readings) in exposed.items():
        for role, items in (("suspect", zoo_readings), ("reference", reference_readings)):
            for r in items:
                log, s = r["log"], r["suspect"]
                target = s.attack.target if s.attack is not None else None
                frame = pd.DataFrame({"epoch": log["epoch"], "defense_acc": log["defense_acc"],
                                      **{f"share_{c}": log[f"probe_share_{c}"] for c in range(k)},
                                      "CA": log.get("CA"), "ASR": log.get("ASR")})
                frame["target_share"] = frame[f"share_{target}"] if target is not None else None
                frames.append(frame.assign(exposure=name, attack=s.label, seed=s.seed, role=role, target=target,
                                           stop_epoch=log.attrs.get("stop_epoch"), seconds=log.attrs.get("seconds")))
    return pd.concat(frames, ignore_index=True).assign(**context(setup))


def model_table(setup: TextSetup, suspects, references) -> pd.DataFrame:
    """CA / ASR / RA, poisoned rows and training seconds of every model (the references too)."""
    rows = []
    for role, models in (("suspect", suspects), ("reference", references)):
        for s in models:
            r = s.record
            rows.append({**context(setup), "attack": s.label, "seed": s.seed, "role": role,
                         "target": s.attack.target if s.attack else None, "CA": r["CA"], "ASR": r.get("ASR"),
                         "RA": r.get("RA"), "n_train": r["n_train"], "n_poisoned": r["n_poisoned"],
                         "train_seconds": r["train_seconds"], "trained_on": r["hardware"]})
    return pd.DataFrame(rows)


def detection_rows(setup: TextSetup, exposure, zoo_readings, reference_readings) -> pd.DataFrame:
    """Label detection by both readings, with and without the exposure, for every model of the zoo.

    Columns: exposure ("none" or its name), reading, the detected label, its score (excess over the references),
    flagged, and the excess on every label (excess_<c>: the clean control's drift is read there); then the truth
    (evaluation): true_target, backdoored, correct, target_excess (the excess on the model's own target); and the
    exposure's stop epoch and the exposed model's test CA / ASR (monitor)."""
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
                rows.append({**context(setup), "attack": s.label, "seed": s.seed, "exposure": exposure_name,
                             "reading": reading, "detected_label": det.label, "score": det.score,
                             "flagged": det.flagged, "verdict": det.verdict, "threshold": thr,
                             **{f"excess_{c}": e for c, e in enumerate(det.excess)},
                             "true_target": target, "backdoored": s.attack is not None,
                             "correct": bool(det.flagged and det.label == target),
                             "target_excess": det.excess[target] if target is not None else None,
                             "stop_epoch": stop if which == "exposed" else None,
                             "CA": at_stop.get("CA") if which == "exposed" else s.record["CA"],
                             "ASR": (at_stop.get("ASR") if which == "exposed" else s.record.get("ASR"))})
    return pd.DataFrame(rows)


def summary(detections: pd.DataFrame) -> pd.DataFrame:
    """Per (exposure, reading): backdoored models flagged with their target, clean models flagged, the mean excess
    of backdoored models on their own target, and the clean control's mean excess on those same labels (the
    number the first must beat)."""
    rows = []
    for (exposure, reading), g in detections.groupby(["exposure", "reading"], sort=False):
        bad, clean = g[g["backdoored"]], g[~g["backdoored"]]
        on_same = [clean[f"excess_{int(t)}"].mean() for t in bad["true_target"]] if len(clean) else []
        rows.append({"exposure": exposure, "reading": reading, "backdoored": len(bad),
                     "detected_with_target": float(bad["correct"].mean()) if len(bad) else None,
                     "clean_flagged": float(clean["flagged"].mean()) if len(clean) else None,
                     "mean_target_excess": float(bad["target_excess"].mean()) if len(bad) else None,
                     "clean_excess_same_labels": float(sum(on_same) / len(on_same)) if on_same else None})
    return pd.DataFrame(rows)
