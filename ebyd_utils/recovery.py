"""Trigger recovery with and without exposure (EBYD, Li et al. 2024, Sec. 4.2): notebook 04's flow.

The defenses (`defenses/neural_cleanse.py`, `defenses/bti_dbf.py`) see a model and the defender's clean
images only. This module is the evaluation side: it runs them on suspects and on their exposed copies, each run
a cached unit (kind "trigger", keyed by method, settings, the inverted model's unit key, classes and seed), and
scores what they recover against the true trigger. Variants, the `exposure` column of every row:

- "none": the method inverts the suspect itself -- the plain defense;
- "CUL": it inverts the exposed model (the zoo's CUL restart 0), whose clean function CUL erased; the recovered
  trigger is judged on the suspect, the model the defender has to fix;
- "CUL label" (Neural Cleanse only): EBYD's label detection reads a label off the exposed models (notebook 03's
  excess share over clean references; its top label, flagged or not), and NC inverts the *suspect* for that one
  class: exposure picks the label, the suspect gives the trigger, at a tenth of NC's cost.

The recovered label of NC is its flagged label, else its smallest-norm class (then `flagged` is False); BTI-DBF
names the class most generated images go to and has no flag rule of its own (`flagged` is empty).
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from .config import Profile, as_dict
from .data import ImageData
from .defenses.trigger_recovery import CONFIGS, recover_trigger, result_from_tensors
from .pipeline import Suspect, subset_test, context
from .zoo import section_rows
from .progress import eta, report
from .trigger_eval import (amplified_perturbation, mask_iou, perturbation_cosine, stamp_with, trigger_asr,
                           true_perturbation)
from .units import cached_unit

GALLERY_NAMES = {"none": "suspect", "CUL": "exposed", "CUL label": "CUL label"}
SHIFT = 3          # pixels: the shift-tolerant IoU (a globally pooled CNN answers to a patch anywhere)
N_SIMILARITY = 200  # test images on which whole-image perturbations are compared


def method_settings(profile: Profile, method: str) -> dict:
    """The method's full settings for this profile: its defaults with the profile's budget (all in the key)."""
    budget = {"nc": {"epochs": profile.recovery.nc_epochs},
              "bti": {"generator_steps": profile.recovery.bti_generator_steps}}[method]
    return {**as_dict(CONFIGS[method]()), **budget}


def invert(profile: Profile, data: ImageData, method: str, model, model_key: str, cache_dir="cache",
           classes=None, label: str = "", progress: bool = False):
    """Run trigger-recovery `method` on `model` (defender side) with the defender's clean images: a cached unit.
    Returns the method's result record."""
    settings = method_settings(profile, method)
    params = {"method": method, "settings": settings, "model": model_key,
              "classes": None if classes is None else [int(c) for c in classes], "seed": profile.recovery.seed}

    def compute():
        extra = {"classes": params["classes"]} if classes is not None else {}
        result = recover_trigger(method, model, data.defense_x, data.defense_y, seed=profile.recovery.seed,
                                 progress=progress, **settings, **extra)
        return result.to_tensors()

    unit = cached_unit("trigger", params, compute, cache_dir, device=data.train_x.device, label=label or method)
    return result_from_tensors(unit.tensors, unit.info)


def named_label(result) -> tuple[int, bool | None]:
    """(the label a result names, whether its own rule flags it; None for a method without a flag rule)."""
    if result.method == "nc":
        if result.flagged_label is not None:
            return result.flagged_label, True
        return result.classes[int(result.norms.argmin())], False
    return result.label, None


def recovered_trigger(result, label: int):
    """(uint8 -> uint8 stamp function, (H, W) mask-like map, mask L1 norm or NaN) of a result for `label`."""
    if result.method == "nc":
        mask, pattern = result.trigger(label)
        return stamp_with(mask, pattern), mask[0], float(mask.sum())
    return result.stamp, result.perturbation_map[0], float("nan")   # BTI: an additive perturbation, no mask


def similarity(attack, stamp, mask_map, images: torch.Tensor) -> dict:
    """Closeness to the true trigger: IoU (in place and within SHIFT pixels) for patch triggers, the cosine of
    the perturbations on `images` for whole-image ones (Blend, SIG). Evaluation side."""
    true_mask, _ = attack.trigger(*images.shape[-2:])
    area = int((true_mask > 0).sum())
    if 0 < area < true_mask[0].numel():
        return {"mask_iou": mask_iou(mask_map, true_mask),
                f"mask_iou_shift{SHIFT}": mask_iou(mask_map, true_mask, max_shift=SHIFT)}
    recovered = (stamp(images).float() - images.float()) / 255
    if not recovered.abs().sum():
        return {"perturbation_cosine": float("nan")}
    return {"perturbation_cosine": perturbation_cosine(recovered, true_perturbation(attack, images))}


def score(result, suspect: Suspect, test: ImageData, seconds: float) -> dict:
    """One row's metrics: the named label, whether it is the true target, the trigger's ASR on the suspect (over
    the non-label test images), its mask L1 norm, its similarity to the true trigger, NC's anomaly index of the
    true target (all classes inverted only)."""
    label, flagged = named_label(result)
    stamp, mask_map, l1 = recovered_trigger(result, label)
    attack = suspect.attack
    row = {"recovered_label": label, "flagged": flagged, "true_target": attack.single_target if attack else None,
           "correct": bool(attack is not None and label == attack.single_target),
           "asr_on_suspect": trigger_asr(suspect.model, stamp, test.test_x, test.test_y, label),
           "mask_l1": l1, "seconds": seconds}
    if result.method == "nc":
        row["anomaly_of_label"] = float(result.anomaly[result.index(label)])
        full = len(result.classes) == test.num_classes
        has_target = attack is not None and attack.single_target is not None
        row["anomaly_of_target"] = float(result.anomaly[result.index(attack.single_target)]) \
            if full and has_target else None
    if attack is not None:
        row.update(similarity(attack, stamp, mask_map, test.test_x[:N_SIMILARITY]))
    return row


def recovery_table(profile: Profile, data: ImageData, suspects, exposed: list, detected_labels: list,
                   cache_dir="cache", test_size: int = 2000, progress: bool = False) -> pd.DataFrame:
    """Every method and variant on every suspect: one row each (see the module docstring).

    exposed: per suspect, (exposed model, its CUL unit key); detected_labels: per suspect, (the label EBYD's
    label detection read off its exposed models, whether it flagged it) (notebook 03; labels_from_detection). The
    `CUL label` rows take that flag, since label detection is their rule. ASR is measured on `test_size` random
    test images."""
    test = subset_test(data, test_size)
    rows, start = [], time.perf_counter()
    for k, (suspect, (exposed_model, exposed_key), (detected, detected_flag)) in enumerate(
            zip(suspects, exposed, detected_labels), 1):
        for method, exposure, model, key, classes in _runs(profile, suspect, exposed_model, exposed_key, detected):
            name = f"{method} on {suspect.label} seed {suspect.seed} ({exposure})"
            result = invert(profile, data, method, model, key, cache_dir, classes, name, progress)
            row = score(result, suspect, test, result.seconds)
            if exposure == "CUL label":
                row["flagged"] = detected_flag
            rows.append({**context(profile, data), "attack": suspect.label, "seed": suspect.seed, "method": method,
                         "exposure": exposure, **row})
        report(f"trigger recovery {eta(k, len(suspects), time.perf_counter() - start)}")
    return pd.DataFrame(rows)


def suspect_rows(profile: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """The zoo rows whose models are inverted: the suspects of recovery.zoo_seeds and recovery.attacks (all if
    empty)."""
    return section_rows(table, profile.recovery.zoo_seeds, profile.recovery.attacks)


def _runs(profile: Profile, suspect: Suspect, exposed_model, exposed_key: str, detected: int) -> list[tuple]:
    """(method, exposure variant, model to invert, its unit key, classes) of one suspect, in the table's order."""
    runs = []
    for method in profile.recovery.methods:
        runs += [(method, "none", suspect.model, suspect.key, None), (method, "CUL", exposed_model, exposed_key, None)]
        if method == "nc":
            runs.append((method, "CUL label", suspect.model, suspect.key, [int(detected)]))
    return runs


def labels_from_detection(detections: pd.DataFrame, suspects) -> list[tuple[int, bool]]:
    """Per suspect, (the label EBYD's label detection read off its exposed models, whether it flagged it)."""
    cul = detections[detections["exposure"] == "CUL"].set_index(["attack", "seed"])
    return [(int(cul.loc[(s.label, s.seed), "detected_label"]), bool(cul.loc[(s.label, s.seed), "flagged"]))
            for s in suspects]


# ------------------------------------------------------------------------------------- gallery
def gallery(profile: Profile, data: ImageData, suspects, exposed: list, detected_labels: list, cache_dir="cache",
            seed: int = 0) -> dict:
    """{attack: {column: (perturbation map (3, H, W) in [0, 1], caption)}} for the suspects of `seed`: what the
    true trigger and each recovered trigger change in one test image (of a class no attack targets), drawn
    as 0.5 + delta / (2 max |delta|) so that grey is "unchanged" and a one-pixel trigger is visible; captions
    name the label (and mark the true target). Inversions come from the cache (recovery_table's runs)."""
    targets = {s.attack.single_target for s in suspects if s.attack is not None} - {None}
    image = data.test_x[[i for i, y in enumerate(data.test_y.tolist()) if y not in targets][:1]]
    grid = {}
    for suspect, (exposed_model, exposed_key), (detected, _) in zip(suspects, exposed, detected_labels):
        if suspect.seed != seed:
            continue
        target = suspect.attack.single_target if suspect.attack else None
        row = {"true trigger": (_delta_map(suspect.attack.apply(image), image), f"target {target}")
               if suspect.attack else (None, "no trigger")}
        for method, exposure, model, key, classes in _runs(profile, suspect, exposed_model, exposed_key, detected):
            result = invert(profile, data, method, model, key, cache_dir, classes)
            label, _ = named_label(result)
            stamp, _, _ = recovered_trigger(result, label)
            caption = f"-> {label}" + (" (target)" if label == target else "")
            column = f"{'NC' if method == 'nc' else 'BTI-DBF'}, {GALLERY_NAMES[exposure]}"
            row[column] = (_delta_map(stamp(image), image), caption)
        grid[suspect.label] = row
    return grid


def _delta_map(changed: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return amplified_perturbation(changed[:1], image[:1])[0]


# ------------------------------------------------------------------------------------- summary
SUMMARY_METRICS = ("correct", "asr_on_suspect", "mask_iou", f"mask_iou_shift{SHIFT}", "perturbation_cosine",
                   "anomaly_of_target", "seconds")


def recovery_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, exposure variant and seed: over the backdoored models, the share whose true target is named
    (`correct`), the share whose true target the method's own rule flags (`target_flagged`; NC only) and the
    means of the other metrics; over the clean models, the share NC flags (`clean_flagged`). All-to-all models
    have no single target to name, so they stay in the per-model table (label, flag, ASR) and out of the summary.
    One row per (method, exposure, seed); recovery_verdicts reads the seed spread off it."""
    rows = []
    for (method, exposure, seed), group in table.groupby(["method", "exposure", "seed"], sort=False):
        one_target = (group["attack"] != "clean") & group["true_target"].notna()
        backdoored, clean = group[one_target], group[group["attack"] == "clean"]
        row = {"method": method, "exposure": exposure, "seed": seed, "n_backdoored": len(backdoored)}
        row.update({m: backdoored[m].astype(float).mean() for m in SUMMARY_METRICS if m in backdoored})
        flagged = backdoored["flagged"] if "flagged" in backdoored else pd.Series(dtype=object)
        row["target_flagged"] = ((backdoored["correct"].astype(bool) & (flagged == True)).mean()  # noqa: E712
                                 if flagged.notna().any() else float("nan"))
        flags = clean["flagged"].dropna() if "flagged" in clean else pd.Series(dtype=float)
        row["clean_flagged"] = flags.astype(float).mean() if len(flags) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def recovery_verdicts(summary: pd.DataFrame) -> list[str]:
    """Plain statements, per method and exposure variant against the plain run: did exposure name the target
    more often, and did the recovered trigger work better on the suspect (the verdict)? With the flags of the
    method's rule (target, clean models) and the spread over seeds."""
    lines = []
    for method, rows in summary.groupby("method", sort=False):
        plain = rows[rows["exposure"] == "none"].set_index("seed")
        for exposure, variant in rows[rows["exposure"] != "none"].groupby("exposure", sort=False):
            variant = variant.set_index("seed")
            named = variant["correct"] - plain["correct"]
            asr = variant["asr_on_suspect"] - plain["asr_on_suspect"]
            verdict = _verdict(named, asr)
            flags = ""
            if plain["target_flagged"].notna().any():
                flags = (f"; target flagged {_spread(plain['target_flagged'])} -> "
                         f"{_spread(variant['target_flagged'])}, clean models flagged "
                         f"{_spread(plain['clean_flagged'])} -> {_spread(variant['clean_flagged'])}")
            lines.append(
                f"{method.upper()} with exposure '{exposure}' vs none: {verdict}. Target named "
                f"{_spread(plain['correct'])} -> {_spread(variant['correct'])} of backdoored models; ASR of the "
                f"recovered trigger on the suspect {_spread(plain['asr_on_suspect'])} -> "
                f"{_spread(variant['asr_on_suspect'])}{flags} (mean over seeds, [min, max] over seeds).")
    return lines


def _verdict(named: pd.Series, asr: pd.Series, tolerance: float = 0.05) -> str:
    """Per seed, exposure is better when it names the target at least as often and its trigger's ASR on the
    suspect is not lower by more than `tolerance`, with one of the two strictly higher; worse the other way
    round; mixed otherwise (e.g. the target named more often by a trigger that no longer fires the suspect)."""
    up = (named >= 0) & (asr >= -tolerance) & ((named > 0) | (asr > tolerance))
    down = (named <= 0) & (asr <= tolerance) & ((named < 0) | (asr < -tolerance))
    n = len(named)
    if up.all():
        return "improved in every seed"
    if down.all():
        return "worse in every seed"
    if not (up | down).any() and (named == 0).all() and (asr.abs() <= tolerance).all():
        return "no change"
    return f"mixed (better in {int(up.sum())}, worse in {int(down.sum())}, neither in {n - int((up | down).sum())} of {n} seeds)"


def _spread(values: pd.Series) -> str:
    return f"{values.mean():.2f} [{values.min():.2f}, {values.max():.2f}]"
