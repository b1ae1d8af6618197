"""Where exposure stops seeing a backdoor: label detection against the poison rate, per trigger, per reading
(EBYD, Li et al. 2024, Sec. 4.1, at rates below the paper's 10%).

Every point is one trigger at one poison rate: its suspects (one a seed), read as notebook 03 reads the zoo --
against clean references trained and exposed the same way, beside clean controls (one a seed). The references
and controls do not depend on the rate or the trigger, so one set serves every point (cached units, the same
keys as notebook 08's rate axis and the zoo's). The triggers sit where the zoo's do not: a patch away from the
corners and a blend, each at a target other than the zoo's 0.

The readings, all defender-side (the suspect, the defense and probe images, the references; never the trigger, the
target or an ASR), each read off the same cached CUL runs unless it says otherwise:

- ``stop``: the default reading (`defenses.label_detection.detect_exposed`): per class, the smallest probe share
  over the restarts at each run's stop epoch, minus the references' mean share at theirs;
- ``peak``: the trajectory instead of the stop -- per class, the largest share any epoch up to the stop reached
  (smallest over restarts), minus the references' peak share: a target that leads the drift early and is overtaken
  by the collapse still counts;
- ``restarts4``: ``stop`` over 4 CUL runs instead of the profile's (2 more runs a model: CUL seeds 2 and 3).

Which reading is best is read off the curve by one rule (`best_readings`): the lowest rate at which it finds the
target in most seeds with no clean control flagged. The default reading changes only if a variant is at least as
good at every trigger and rate, better at one, and flags no clean control (`replaces_default`).

Where ours differs from the paper: the paper reports rates of 1-10% on ResNet-18 with one CUL run and no clean
control; here every rate is read with the controls and intervals of notebook 03's rule.
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..attacks import make_attack
from ..config import override
from ..defenses import detect_exposed, detect_label
from ..pipeline import Run, context, train_suspect
from ..zoo import REFERENCE_SEED_OFFSET
from .claims import false_flags
from .exposure_units import exposures_of

READINGS = ("stop", "peak", "restarts4")
# trigger name -> (attack, its settings): a 4x4 patch off the corners and a noise blend, targets other than 0
TRIGGERS = {"patch": ("badnets", {"size": 4, "position": (10, 18), "target": 6}), "blend": ("blend", {"target": 2})}
GRIDS = {
    # a test of the flow (a low rate is computed and reported, not that it is seen): the patch at 2%, one seed
    "smoke": {"triggers": ["patch"], "rates": [0.02], "seeds": [0]},
    "quick": {"triggers": ["patch", "blend"], "rates": [0.005, 0.01, 0.02, 0.03, 0.05, 0.1], "seeds": [0, 1, 2]},
    "paper": {"triggers": ["patch", "blend"], "rates": [0.005, 0.01, 0.02, 0.03, 0.05, 0.1], "seeds": [0, 1, 2]},
}


def grid(profile_name: str, triggers=None, rates=None, seeds=None) -> dict:
    """The profile's grid (its own, else quick's), with what the notebook gives (not None); ValueError on an
    unknown trigger, a rate outside (0, 1) or no seed."""
    base = GRIDS.get(profile_name, GRIDS["quick"])
    g = {
        "triggers": list(base["triggers"] if triggers is None else triggers),
        "rates": list(base["rates"] if rates is None else rates),
        "seeds": list(base["seeds"] if seeds is None else seeds),
    }
    unknown = set(g["triggers"]) - set(TRIGGERS)
    if unknown:
        raise ValueError(f"unknown trigger(s) {sorted(unknown)}; choose from {list(TRIGGERS)}")
    bad = [r for r in g["rates"] if isinstance(r, bool) or not (isinstance(r, (int, float)) and 0 < r < 1)]
    if bad or not g["rates"]:
        raise ValueError(f"poison rates must be in (0, 1), at least one; got {g['rates']}")
    if not g["seeds"]:
        raise ValueError("give at least one seed")
    return g


def peak_shares(log: pd.DataFrame) -> torch.Tensor:
    """Per class, the largest probe share any logged epoch up to the run's stop reached (the whole log if it never
    stopped): the trajectory's reading, from the same CUL log as the stop's."""
    columns = [c for c in log.columns if c.startswith("probe_share_")]
    if not columns:
        raise ValueError("the CUL log has no probe shares; run clean_unlearn with probe_x")
    stop = log.attrs.get("stop_epoch")
    upto = log if stop is None else log[log["epoch"] <= stop]
    return torch.tensor(upto[columns].to_numpy(dtype=float).max(axis=0), dtype=torch.float32)


def read_logs(logs, reference_logs, threshold: float, how: str) -> dict:
    """One reading ("stop": notebook 03's rule, `detect_exposed`; "peak": the same on each run's peak shares) of a
    model's CUL runs against its references' runs."""
    exposed = all(bool(log.attrs.get("collapsed")) for log in logs)
    if how == "stop":
        det = detect_exposed(logs, reference_logs, threshold)
    else:
        peaks = [[peak_shares(g) for g in ref] for ref in reference_logs]
        det = detect_label([peak_shares(log) for log in logs], peaks, threshold, exposed=exposed)
    return {"detected_label": det.label, "score": det.score, "flagged": det.flagged, "measurable": exposed}


def model_readings(run: Run, suspect, reference_logs: dict, restarts: int) -> list[dict]:
    """Every reading of one model: its CUL runs (the profile's restarts, then `restarts` for restarts4) read
    against the references' runs of the same count."""
    thr = run.profile.detection.threshold
    base = run.profile.detection.restarts
    more = run.replace(profile=override(run.profile, {"detection": {"restarts": restarts}}))
    logs = exposures_of(more, suspect, "cul")  # restart seeds 0..restarts-1; the first `base` are the zoo's units
    out = []
    for reading, runs, refs in (
        ("stop", logs[:base], [r[:base] for r in reference_logs]),
        ("peak", logs[:base], [r[:base] for r in reference_logs]),
        ("restarts4", logs, reference_logs),
    ):
        r = read_logs(runs, refs, thr, "peak" if reading == "peak" else "stop")
        cost = sum(float(log.attrs.get("seconds", float("nan"))) for log in runs)  # the cost: its CUL runs' seconds
        out.append({"reading": reading, "restarts": len(runs), "threshold": thr, **r, "cul_seconds": cost})
    return out


def sweep(run: Run, g: dict, restarts: int = 4) -> pd.DataFrame:
    """Every (trigger, rate, seed) suspect and every seed's clean control, each read every way (READINGS); one row
    per model and reading. The evaluation columns (true target, the suspect's CA and ASR, `correct`) come last."""
    if restarts < run.profile.detection.restarts:
        raise ValueError(f"restarts ({restarts}) must be at least the profile's ({run.profile.detection.restarts})")
    more = run.replace(profile=override(run.profile, {"detection": {"restarts": restarts}}))
    references = [
        train_suspect(run, None, REFERENCE_SEED_OFFSET + i, model_id=f"reference-{i}")
        for i in range(run.profile.detection.n_reference)
    ]
    ref_logs = [exposures_of(more, r, "cul", evaluate_it=False) for r in references]
    jobs = [("clean", None, s) for s in g["seeds"]]
    jobs += [(t, rate, s) for t in g["triggers"] for rate in g["rates"] for s in g["seeds"]]
    rows = []
    for trigger, rate, seed in tqdm(jobs, desc="low rate", disable=not run.progress):
        attack = None
        if trigger != "clean":
            name, settings = TRIGGERS[trigger]
            attack = make_attack(name, **{**settings, "rate": rate, "seed": seed})
        model_id = f"{trigger}-r{rate:g}-s{seed}" if attack is not None else f"clean-s{seed}"
        suspect = train_suspect(run, attack, seed, model_id=model_id)
        facts = {
            **context(run),
            "model_id": model_id,
            "trigger": trigger,
            "attack": suspect.label,
            "poison_rate": rate,
            "seed": seed,
            "backdoored": attack is not None,
            "true_target": attack.single_target if attack is not None else None,
            "CA_suspect": suspect.record.get("CA"),
            "ASR_suspect": suspect.record.get("ASR"),
        }
        rows += [{**facts, **r} for r in model_readings(run, suspect, ref_logs, restarts)]
    table = pd.DataFrame(rows).astype({"true_target": "Int64"})
    hit = table["flagged"] & (table["detected_label"] == table["true_target"])
    return table.assign(correct=hit.fillna(False).astype(bool))


def rate_curve(table: pd.DataFrame) -> pd.DataFrame:
    """Per trigger, rate and reading: the suspects flagged with their target (k of n, exact 95% interval), the
    suspects' median ASR, and the clean controls flagged by the same reading (k of n, largest clean score)."""
    from scipy.stats import binomtest

    clean = table[~table["backdoored"]]
    rows = []
    for (trigger, rate, reading), g in table[table["backdoored"]].groupby(["trigger", "poison_rate", "reading"]):
        k, n = int(g["correct"].sum()), len(g)
        ci = binomtest(k, n).proportion_ci(0.95, method="exact")
        mine = clean[clean["reading"] == reading]  # a control CUL never exposed is not read: never a flag
        ctrl = false_flags(mine["score"].where(mine["measurable"], -1.0), float(g["threshold"].iloc[0]))
        rows.append(
            {
                "trigger": trigger,
                "poison_rate": rate,
                "reading": reading,
                "n": n,
                "found": k,
                "found_rate": k / n,
                "found_low": ci.low,
                "found_high": ci.high,
                "not_measurable": int((~g["measurable"]).sum()),
                "median_ASR": float(g["ASR_suspect"].median()),
                "cul_runs": int(g["restarts"].max()) if "restarts" in g else None,
                "median_cul_seconds": float(g["cul_seconds"].median()) if "cul_seconds" in g else float("nan"),
                "clean_n": ctrl["n_clean"],
                "clean_flagged": ctrl["flagged"],
                "largest_clean_score": ctrl["largest_clean_score"],
                "threshold": ctrl["threshold"],
            }
        )
    return pd.DataFrame(rows)


def limits(curve: pd.DataFrame) -> pd.DataFrame:
    """Per trigger and reading, the lowest rate at which the reading finds the target in most seeds (more than
    half) while flagging no clean control -- the method's measured limit there (NaN: no rate tried)."""
    ok = curve[(curve["found_rate"] > 0.5) & (curve["clean_flagged"] == 0)]
    lowest = ok.groupby(["trigger", "reading"])["poison_rate"].min()
    tried = curve.groupby(["trigger", "reading"])["poison_rate"].agg(["min", "max"])
    return tried.join(lowest.rename("lowest_rate_found")).reset_index()


def limit_lines(curve: pd.DataFrame) -> list[str]:
    """The verdict, per trigger and reading, written from the curve: n, the interval, the clean controls beside."""
    lines = []
    for r in limits(curve).itertuples():
        at = curve[(curve["trigger"] == r.trigger) & (curve["reading"] == r.reading)]
        ctrl = at.iloc[0]
        where = (
            f"finds the target in most seeds down to {r.lowest_rate_found:.1%}"
            if pd.notna(r.lowest_rate_found)
            else "finds the target in most seeds at no rate tried"
        )
        points = "; ".join(
            f"{p.poison_rate:.1%}: {p.found}/{p.n} [{p.found_low:.2f}, {p.found_high:.2f}], ASR {p.median_ASR:.2f}"
            for p in at.sort_values("poison_rate").itertuples()
        )
        lines.append(
            f"{r.trigger}, reading {r.reading}: {where} (rates {r.min:.1%}-{r.max:.1%}; {points}); clean controls "
            f"flagged {ctrl.clean_flagged}/{ctrl.clean_n}, largest clean score {ctrl.largest_clean_score:.3f} vs "
            f"threshold {ctrl.threshold}."
        )
    return lines


def describe(trigger: str) -> str:
    """A trigger's name with what it is, from TRIGGERS (never typed twice): "patch (badnets, size 4, ...)"."""
    attack, settings = TRIGGERS[trigger]
    return f"{trigger} ({attack}, " + ", ".join(f"{k} {v}" for k, v in settings.items()) + ")"


def best_readings(curve: pd.DataFrame) -> pd.DataFrame:
    """Per trigger, the reading that finds the target in most seeds at the lowest rate with no clean control flagged
    (ties: more suspects found over all rates, then the order of READINGS, the default first)."""
    lim = limits(curve)
    found = curve.groupby(["trigger", "reading"])["found"].sum().rename("found_all")
    order = {r: i for i, r in enumerate(READINGS)}
    lim = lim.join(found, on=["trigger", "reading"]).assign(order=lambda t: t["reading"].map(order).fillna(len(order)))
    lim = lim.sort_values(
        ["trigger", "lowest_rate_found", "found_all", "order"], ascending=[True, True, False, True], na_position="last"
    )
    return lim.groupby("trigger").head(1).drop(columns="order").reset_index(drop=True)


def replaces_default(curve: pd.DataFrame, variant: str, default: str = "stop") -> bool:
    """The rule for changing the default reading: the variant finds at least as many suspects at every trigger and
    rate, more at one, and flags no clean control."""
    at = curve.set_index(["trigger", "poison_rate", "reading"])["found"].unstack("reading")
    if variant not in at or default not in at:
        return False
    clean = curve.loc[curve["reading"] == variant, "clean_flagged"]
    diff = at[variant] - at[default]
    return bool((diff >= 0).all() and (diff > 0).any() and (clean == 0).all())


def front_lines(curve: pd.DataFrame, default: str = "stop") -> list[str]:
    """What a user must know, per trigger, in one line each (the README's front page, the scanner's report): the
    lowest rate the default reading finds in most seeds, the rate below it with its count and ASR (a working
    backdoor it does not see), the best variant, and the clean controls beside."""
    lim = limits(curve).set_index(["trigger", "reading"])
    best = best_readings(curve).set_index("trigger")
    where = f", {', '.join(sorted(set(map(str, curve['profile']))))}" if "profile" in curve else ""
    lines = []
    for trigger, part in curve[curve["reading"] == default].groupby("trigger", sort=False):
        part = part.sort_values("poison_rate")
        low = lim.loc[(trigger, default), "lowest_rate_found"]
        n = int(part["n"].max())
        if pd.notna(low):
            text = f"the default reading ({default}) finds the target in most seeds down to {low:.1%}"
            below = part[part["poison_rate"] < low]
        else:
            text = f"the default reading ({default}) finds the target in most seeds at no rate tried"
            below = part
        if len(below):
            b = below.iloc[-1]
            text += (
                f"; at {b.poison_rate:.1%} it finds {b.found}/{b.n} [{b.found_low:.2f}, {b.found_high:.2f}] "
                f"with median ASR {b.median_ASR:.2f}"
            )
        b = best.loc[trigger]
        if b["reading"] != default and pd.notna(b["lowest_rate_found"]):
            text += f"; best variant {b['reading']}, down to {b['lowest_rate_found']:.1%}"
        r = part.iloc[0]
        lines.append(
            f"{describe(trigger) if trigger in TRIGGERS else trigger}: {text}. Clean controls flagged "
            f"{r.clean_flagged}/{r.clean_n} (largest score {r.largest_clean_score:.3f}, threshold {r.threshold}); "
            f"{n} seed(s) a rate, rates {part['poison_rate'].min():.1%}-{part['poison_rate'].max():.1%}{where}."
        )
    return lines


def cost_lines(curve: pd.DataFrame) -> list[str]:
    """What each reading costs a model: its CUL runs and their median seconds (the units' recorded times, on the
    hardware the curve names); a reading of the same runs as another costs nothing more."""
    where = f" on {', '.join(sorted(set(map(str, curve['hardware']))))}" if "hardware" in curve else ""
    lines = []
    for reading, g in curve.groupby("reading", sort=False):
        if "cul_runs" not in g or g["cul_runs"].isna().all():
            continue  # a curve from rows without their CUL runs: no cost to state
        same = " (the runs stop reads: nothing more)" if reading == "peak" else ""
        lines.append(
            f"{reading}: {int(g['cul_runs'].max())} CUL run(s) a model{same}, median "
            f"{g['median_cul_seconds'].median():.0f} s a model{where}."
        )
    return lines


def verdict_lines(curve: pd.DataFrame) -> list[str]:
    """Notebook 12's verdict, from the curve: the front lines (README, scanner), the best reading per trigger, whether
    a variant replaces the default (the rule of `replaces_default`), every reading's limit, and what each costs."""
    lines = list(front_lines(curve))
    for r in best_readings(curve).itertuples():
        where = f"down to {r.lowest_rate_found:.1%}" if pd.notna(r.lowest_rate_found) else "at no rate tried"
        lines.append(
            f"best reading for {r.trigger}: {r.reading}, {where} ({r.found_all} suspects found over all rates)."
        )
    rule = "at least as good at every trigger and rate, better at one, no clean control flagged"
    for variant in sorted(set(curve["reading"]) - {"stop"}):
        change = "replaces" if replaces_default(curve, variant) else "does not replace"
        lines.append(f"{variant} {change} the default reading (the rule: {rule}).")
    return lines + limit_lines(curve) + ["cost, per reading: " + " ".join(cost_lines(curve))]
