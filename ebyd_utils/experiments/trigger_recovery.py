"""Trigger recovery with and without exposure (EBYD, Li et al. 2024, Sec. 4.2): notebook 04's flow.

The defenses (`defenses/trigger_recovery/`: `neural_cleanse.py`, `bti_dbf.py`) see a model and the defender's clean
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

from ..config import Profile, as_dict
from ..core.progress import eta, report
from ..core.units import cached_unit
from ..data import ImageData
from ..defenses.trigger_recovery import CONFIGS, recover_trigger, result_from_tensors
from ..pipeline import Run, Suspect, context, subset_test
from ..zoo import section_rows
from .trigger_metrics import N_SIMILARITY, SHIFT, similarity, stamp_with, trigger_asr


def method_settings(profile: Profile, method: str) -> dict:
    """The method's full settings for this profile: its defaults with the profile's budget (all in the key)."""
    budget = {
        "nc": {"epochs": profile.recovery.nc_epochs},
        "bti": {"generator_steps": profile.recovery.bti_generator_steps},
    }[method]
    return {**as_dict(CONFIGS[method]()), **budget}


def invert(run: Run, method: str, model, model_key: str, classes=None, label: str = ""):
    """Run trigger-recovery `method` on `model` (defender side) with the defender's clean images: a cached unit.
    `classes` narrows the inversion to those labels (the defender's choice, e.g. the label its detection read;
    None = every class). Returns the method's result record."""
    profile, data = run.profile, run.data
    settings = method_settings(profile, method)
    if classes is not None and not all(isinstance(c, int) and 0 <= c < data.num_classes for c in classes):
        raise ValueError(
            f"classes must be labels in [0, {data.num_classes - 1}] (or None for all); got {classes!r}"
            " -- pass the label that detection read, not a missing one"
        )
    params = {
        "method": method,
        "settings": settings,
        "model": model_key,
        "classes": None if classes is None else [int(c) for c in classes],
        "seed": profile.recovery.seed,
    }

    def compute():
        extra = {"classes": params["classes"]} if classes is not None else {}
        result = recover_trigger(
            method,
            model,
            data.defense_x,
            data.defense_y,
            seed=profile.recovery.seed,
            progress=False,
            **settings,
            **extra,
        )
        return result.to_tensors()

    unit = cached_unit("trigger", params, compute, run.cache_dir, device=run.device, label=label or method)
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
    return result.stamp, result.perturbation_map[0], float("nan")  # BTI: an additive perturbation, no mask


def score(result, suspect: Suspect, test: ImageData, seconds: float) -> dict:
    """One row's metrics: the named label, whether it is the true target, the trigger's ASR on the suspect (over
    the non-label test images), its mask L1 norm, its similarity to the true trigger, NC's anomaly index of the
    true target (all classes inverted only)."""
    label, flagged = named_label(result)
    stamp, mask_map, l1 = recovered_trigger(result, label)
    attack = suspect.attack
    row = {
        "recovered_label": label,
        "flagged": flagged,
        "true_target": attack.single_target if attack else None,
        "correct": bool(attack is not None and label == attack.single_target),
        "asr_on_suspect": trigger_asr(suspect.model, stamp, test.test_x, test.test_y, label),
        "mask_l1": l1,
        "seconds": seconds,
    }
    if result.method == "nc":
        row["anomaly_of_label"] = float(result.anomaly[result.index(label)])
        full = len(result.classes) == test.num_classes
        has_target = attack is not None and attack.single_target is not None
        row["anomaly_of_target"] = (
            float(result.anomaly[result.index(attack.single_target)]) if full and has_target else None
        )
    if attack is not None:
        row.update(similarity(attack, stamp, mask_map, test.test_x[:N_SIMILARITY]))
    return row


def recovery_table(run: Run, suspects, exposed: list, detected_labels: list, test_size: int = 2000) -> pd.DataFrame:
    """Every method and variant on every suspect: one row each (see the module docstring).

    exposed: per suspect, (exposed model, its CUL unit key); detected_labels: per suspect, (the label EBYD's
    label detection read off its exposed models, whether it flagged it) (notebook 03; labels_from_detection). The
    `CUL label` rows take that flag, since label detection is their rule. ASR is measured on `test_size` random
    test images."""
    test = subset_test(run.data, test_size)
    rows, start = [], time.perf_counter()
    for k, (suspect, (exposed_model, exposed_key), (detected, detected_flag)) in enumerate(
        zip(suspects, exposed, detected_labels), 1
    ):
        for method, exposure, model, key, classes in runs(run.profile, suspect, exposed_model, exposed_key, detected):
            result = invert(run, method, model, key, classes, f"{method} on {suspect.model_id} ({exposure})")
            row = score(result, suspect, test, result.seconds)
            if exposure == "CUL label":
                row["flagged"] = detected_flag
            rows.append(
                {
                    **context(run),
                    "model_id": suspect.model_id,
                    "attack": suspect.label,
                    "seed": suspect.seed,
                    "method": method,
                    "exposure": exposure,
                    **row,
                }
            )
        report(f"trigger recovery {eta(k, len(suspects), time.perf_counter() - start)}")
    return pd.DataFrame(rows)


def suspect_rows(profile: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """The zoo rows whose models are inverted: the suspects of recovery.zoo_seeds and recovery.attacks (all if
    empty)."""
    return section_rows(table, profile.recovery.zoo_seeds, profile.recovery.attacks)


def runs(profile: Profile, suspect: Suspect, exposed_model, exposed_key: str, detected: int) -> list[tuple]:
    """(method, exposure variant, model to invert, its unit key, classes) of one suspect, in the table's order."""
    runs = []
    for method in profile.recovery.methods:
        runs += [(method, "none", suspect.model, suspect.key, None), (method, "CUL", exposed_model, exposed_key, None)]
        if method == "nc":
            runs.append((method, "CUL label", suspect.model, suspect.key, [int(detected)]))
    return runs


def labels_from_detection(detections: pd.DataFrame, suspects) -> list[tuple[int, bool]]:
    """Per suspect, (the label EBYD's label detection read off its exposed models, whether it flagged it): the
    defender's reading, found by the model's id -- never the true target. A suspect with no CUL row is an error
    that names it."""
    cul = detections[detections["exposure"] == "CUL"].set_index("model_id")
    if not cul.index.is_unique:
        raise ValueError(f"the detection table has several CUL rows for {sorted(cul.index[cul.index.duplicated()])}")
    missing = [s.model_id for s in suspects if s.model_id not in cul.index]
    if missing:
        raise ValueError(f"no label-detection row for {missing}: run notebook 03's detection_table on these models")
    return [(int(cul.loc[s.model_id, "detected_label"]), bool(cul.loc[s.model_id, "flagged"])) for s in suspects]


# ------------------------------------------------------------------------------------- summary
SUMMARY_METRICS = (
    "correct",
    "asr_on_suspect",
    "mask_iou",
    f"mask_iou_shift{SHIFT}",
    "perturbation_cosine",
    "anomaly_of_target",
    "seconds",
)


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
        row["target_flagged"] = (
            (backdoored["correct"].astype(bool) & (flagged == True)).mean()  # noqa: E712
            if flagged.notna().any()
            else float("nan")
        )
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
                flags = (
                    f"; target flagged {_spread(plain['target_flagged'])} -> "
                    f"{_spread(variant['target_flagged'])}, clean models flagged "
                    f"{_spread(plain['clean_flagged'])} -> {_spread(variant['clean_flagged'])}"
                )
            lines.append(
                f"{method.upper()} with exposure '{exposure}' vs none: {verdict}. Target named "
                f"{_spread(plain['correct'])} -> {_spread(variant['correct'])} of backdoored models; ASR of the "
                f"recovered trigger on the suspect {_spread(plain['asr_on_suspect'])} -> "
                f"{_spread(variant['asr_on_suspect'])}{flags} (mean over seeds, [min, max] over seeds)."
            )
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
    neither = n - int((up | down).sum())
    return f"mixed (better in {int(up.sum())}, worse in {int(down.sum())}, neither in {neither} of {n} seeds)"


def _spread(values: pd.Series) -> str:
    return f"{values.mean():.2f} [{values.min():.2f}, {values.max():.2f}]"


def attack_lines(table: pd.DataFrame) -> list[str]:
    """Per attack of recovery_table: for each method and variant, the models whose true target it named (any
    label for a clean model: what NC's own rule flagged) out of n, and the mean ASR of the recovered trigger on
    the suspect."""
    lines = []
    for attack, g in table.groupby("attack", sort=False):
        parts = []
        for (method, exposure), e in g.groupby(["method", "exposure"], sort=False):
            if attack == "clean":
                flagged = int(e["flagged"].fillna(False).astype(bool).sum())
                parts.append(f"{method.upper()} {exposure}: {flagged} of {len(e)} flagged")
            else:
                parts.append(
                    f"{method.upper()} {exposure}: target named in {int(e['correct'].sum())} of {len(e)}, "
                    f"trigger ASR {e['asr_on_suspect'].mean():.2f}"
                )
        lines.append(f"{attack}: " + "; ".join(parts) + ".")
    return lines
