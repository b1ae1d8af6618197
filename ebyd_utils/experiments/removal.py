"""Backdoor removal with and without exposure (EBYD, Li et al. 2024, Sec. 4.4): notebook 06's flow, evaluation
side. The methods (`defenses/removal/`: `fine_tuning.py`, `fine_pruning.py`, `anp.py`, `rnp.py`,
`nc_unlearning.py`) see a model, the defender's clean images and, for the guided variants, the exposed model; this
module runs them on the
zoo's suspects, caches every repaired model as a unit (kind "repair"), and measures CA, ASR, RA and DER before
and after. Variants, the `exposure` column:

- "none": the plain method on the suspect (NC unlearning with the trigger NC recovers from the suspect);
- "CUL": the methods that rank or mask neurons (FP, ANP, RNP) do so on the exposed model (CUL restart 0) and
  repair the suspect (RNP skips its own unlearning: the exposed model is an unlearned model); NC unlearning uses
  the trigger NC recovers from the exposed model. FT has no use for exposure and runs once.

DER = [max(0, ASR_before - ASR_after) - max(0, CA_before - CA_after) + 1] / 2 (BackdoorBench's defense
effectiveness rating): 1 is a perfect repair, 0.5 no change.
"""

from __future__ import annotations

import time

import pandas as pd

from ..config import Profile, as_dict
from ..core.metrics import der
from ..core.progress import eta, report
from ..core.units import cached_unit
from ..defenses.removal import GUIDED, REMOVAL, RemovalResult
from ..pipeline import Run, Suspect, context, subset_test
from ..train import evaluator
from . import trigger_recovery as recovery

NAMES = {"ft": "FT", "fp": "FP", "anp": "ANP", "rnp": "RNP", "nc_unlearning": "NC unlearning"}

# The anchors' published numbers (never ours): CA / ASR in %, undefended and after each defense.
ANCHORS = pd.DataFrame(
    [
        {
            "source": "BackdoorBench leaderboard",
            "model": "PreAct-ResNet-18",
            "attack": "BadNets 10%",
            "defense": d,
            "CA": ca,
            "ASR": asr,
            "url": "https://backdoorbench.github.io/leaderboard-cifar10.html",
        }
        for d, ca, asr in (
            ("none", 91.32, 95.03),
            ("FT", 89.96, 1.48),
            ("FP", 91.31, 57.13),
            ("NC", 89.05, 1.27),
            ("ANP", 84.17, 0.73),
        )
    ]
    + [
        {
            "source": "RNP repository log (threshold 0.30, 500 clean images)",
            "model": "ResNet-18",
            "attack": "BadNets 10%",
            "defense": d,
            "CA": ca,
            "ASR": asr,
            "url": "https://github.com/bboylyg/RNP",
        }
        for d, ca, asr in (("none", 93.40, 100.0), ("RNP", 92.77, 1.72))
    ]
)


def check_methods(methods) -> tuple:
    unknown = set(methods) - set(REMOVAL)
    if unknown or not methods:
        raise ValueError(f"unknown or no removal method(s) {sorted(unknown)}; choose from {list(REMOVAL)}")
    return tuple(methods)


def method_settings(profile: Profile, method: str) -> dict:
    """The method's full settings: its defaults with the profile's fine-tuning budget (all in the key)."""
    _, config = REMOVAL[method]
    settings = as_dict(config())
    epochs = profile.removal.finetune_epochs
    if method == "ft":
        settings["epochs"] = epochs
    elif "finetune" in settings:
        settings["finetune"] = {**settings["finetune"], "epochs": epochs}
    if method == "anp":
        settings["iterations"] = profile.removal.anp_iterations
    return settings


def repair(
    run: Run, method: str, suspect: Suspect, guide=None, guide_key=None, trigger=None, trigger_key=None, label: str = ""
) -> RemovalResult:
    """One repaired model (defender side: the method sees the suspect, the defender's clean images and the guide
    or recovered trigger it is given): a cached unit under the method's settings and every input's key."""
    profile, data = run.profile, run.data
    fn, _ = REMOVAL[method]
    settings = method_settings(profile, method)
    params = {
        "method": method,
        "settings": settings,
        "suspect": suspect.key,
        "guide": guide_key,
        "trigger": trigger_key,
        "seed": profile.removal.seed,
    }

    def compute():
        extra = {}
        if method in GUIDED:
            extra["guide"] = guide
        if method == "nc_unlearning":
            extra.update(recovered_mask=trigger[0], recovered_pattern=trigger[1])
        result = fn(suspect.model, data.defense_x, data.defense_y, seed=profile.removal.seed, **extra, **settings)
        return result.to_tensors()

    unit = cached_unit("repair", params, compute, run.cache_dir, device=run.device, label=label or method)
    return RemovalResult.from_tensors(unit.tensors, unit.info, suspect.model)


def _nc_trigger(run: Run, model, key: str):
    """NC's trigger for the label it names on `model` (notebook 04's cached inversion): ((mask, pattern), key)."""
    result = recovery.invert(run, "nc", model, key)
    label, _ = recovery.named_label(result)
    return result.trigger(label), f"nc:{key}:{label}"


def runs(profile: Profile, suspect: Suspect, exposed_model, exposed_key: str) -> list[tuple]:
    """(method, exposure, guide, guide key, NC-trigger source model, its key) of one suspect, in table order."""
    out = []
    for method in profile.removal.methods:
        out.append((method, "none", None, None, suspect.model, suspect.key))
        if method in GUIDED:
            out.append((method, "CUL", exposed_model, exposed_key, None, None))
        elif method == "nc_unlearning":
            out.append((method, "CUL", None, None, exposed_model, exposed_key))
    return out


def removal_table(run: Run, suspects, exposed: list, test_size: int = 2000) -> pd.DataFrame:
    """Every method and variant on every suspect: CA / ASR / RA before and after, DER, seconds (one row each).

    Args:
        run: the flow's context; profile.removal names the methods and budgets.
        suspects: the models to repair; exposed: per suspect, (exposed model, its CUL unit key).
        test_size: random test images CA / ASR / RA are measured on.
    Returns:
        one row per (model, method, exposure): model_id, attack, seed, CA_before, CA, ASR_before, ASR, RA_before,
        RA, DER (backdoored models), n_pruned, seconds."""
    test = subset_test(run.data, test_size)
    rows, start = [], time.perf_counter()
    for k, (suspect, (exposed_model, exposed_key)) in enumerate(zip(suspects, exposed), 1):
        measure = evaluator(test, suspect.attack)  # the triggered test images made once a suspect
        before = measure(suspect.model)
        for method, exposure, guide, guide_key, source, source_key in runs(
            run.profile, suspect, exposed_model, exposed_key
        ):
            trigger = trigger_key = None
            if method == "nc_unlearning":
                trigger, trigger_key = _nc_trigger(run, source, source_key)
            result = repair(
                run,
                method,
                suspect,
                guide,
                guide_key,
                trigger,
                trigger_key,
                f"{NAMES[method]} on {suspect.model_id} ({exposure})",
            )
            after = measure(result.model)
            row = {"CA_before": before["CA"], "CA": after["CA"]}
            if suspect.attack is not None:
                row.update(
                    ASR_before=before["ASR"],
                    ASR=after["ASR"],
                    RA_before=before["RA"],
                    RA=after["RA"],
                    DER=der(before["CA"], after["CA"], before["ASR"], after["ASR"]),
                )
            rows.append(
                {
                    **context(run),
                    "model_id": suspect.model_id,
                    "attack": suspect.label,
                    "seed": suspect.seed,
                    "method": method,
                    "exposure": exposure,
                    **row,
                    "n_pruned": sum(len(v) for v in result.pruned.values()),
                    "seconds": result.seconds,
                }
            )
        report(f"removal {eta(k, len(suspects), time.perf_counter() - start)}")
    return pd.DataFrame(rows)


def removal_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and exposure: over the backdoored models, mean CA, ASR, DER (and their seed spread); over the
    clean models, the mean CA lost."""
    rows = []
    for (method, exposure), g in table.groupby(["method", "exposure"], sort=False):
        bd, clean = g[g["attack"] != "clean"], g[g["attack"] == "clean"]
        per_seed = bd.groupby("seed")["DER"].mean()
        rows.append(
            {
                "method": method,
                "exposure": exposure,
                "n_backdoored": len(bd),
                "CA": bd["CA"].mean(),
                "ASR": bd["ASR"].mean(),
                "DER": bd["DER"].mean(),
                "DER_seed_min": per_seed.min(),
                "DER_seed_max": per_seed.max(),
                "clean_CA_lost": (clean["CA_before"] - clean["CA"]).mean() if len(clean) else float("nan"),
                "seconds": g["seconds"].mean(),
            }
        )
    return pd.DataFrame(rows)


def removal_verdicts(summary: pd.DataFrame, tolerance: float = 0.02) -> list[str]:
    """Per guided method: did the exposed variant raise the mean DER (beyond `tolerance`) in every seed?"""
    lines = []
    for method, g in summary.groupby("method", sort=False):
        g = g.set_index("exposure")
        plain = g.loc["none"]
        if "CUL" not in g.index:
            lines.append(
                f"{NAMES[method]} (no exposure variant): DER {plain['DER']:.2f}, CA {plain['CA']:.2f}, "
                f"ASR {plain['ASR']:.2f}; a clean model loses {plain['clean_CA_lost']:.3f} CA."
            )
            continue
        cul = g.loc["CUL"]
        delta = cul["DER"] - plain["DER"]
        word = "improved" if delta > tolerance else ("worsened" if delta < -tolerance else "did not change")
        lines.append(
            f"{NAMES[method]}: exposure {word} removal, DER {plain['DER']:.2f} "
            f"[{plain['DER_seed_min']:.2f}, {plain['DER_seed_max']:.2f}] -> {cul['DER']:.2f} "
            f"[{cul['DER_seed_min']:.2f}, {cul['DER_seed_max']:.2f}] (mean, [min, max] over seeds); CA "
            f"{plain['CA']:.2f} -> {cul['CA']:.2f}, ASR {plain['ASR']:.2f} -> {cul['ASR']:.2f}; a clean "
            f"model loses {plain['clean_CA_lost']:.3f} -> {cul['clean_CA_lost']:.3f} CA."
        )
    return lines


def attack_lines(table: pd.DataFrame) -> list[str]:
    """Per attack of removal_table: each method's mean DER plain and, for guided methods, guided by the exposed
    model (a clean model: the CA it loses), with n."""
    lines = []
    for attack, g in table.groupby("attack", sort=False):
        n = g["model_id"].nunique()
        parts = []
        for method, m in g.groupby("method", sort=False):
            values = m.groupby("exposure", sort=False)
            if attack == "clean":
                lost = (values["CA_before"].mean() - values["CA"].mean()).round(3)
                parts.append(f"{NAMES[method]} CA lost " + " -> ".join(f"{v:.3f}" for v in lost))
            else:
                parts.append(f"{NAMES[method]} DER " + " -> ".join(f"{v:.2f}" for v in values["DER"].mean()))
        lines.append(f"{attack} (n = {n}; plain -> guided): " + "; ".join(parts) + ".")
    return lines
