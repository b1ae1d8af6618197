"""Notebook 12's curve and verdict, read off the low-rate table (`low_rate.sweep`): per trigger, rate and reading, the
suspects flagged with their target (k of n, exact 95% interval) beside the clean controls; each reading's limit (the
lowest rate found in most seeds with no clean control flagged); the best reading; whether a variant replaces the
default; what each costs; and the lines the README's front page and the scanner's report state.

Which reading is best is read off the curve by one rule (`best_readings`): the lowest rate at which it finds the
target in most seeds with no clean control flagged. The default reading changes only if a variant is at least as
good at every trigger and rate, better at one, and flags no clean control (`replaces_default`).
"""

from __future__ import annotations

import pandas as pd

from .clean_threshold import false_flags
from .low_rate import NC_TOP, READINGS, TRIGGERS, describe


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
                "median_seconds": float(g["seconds"].median()) if "seconds" in g else float("nan"),
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
            v = curve[(curve["trigger"] == trigger) & (curve["reading"] == b["reading"])].iloc[0]
            text += (
                f"; best variant {b['reading']}, down to {b['lowest_rate_found']:.1%} (its clean controls flagged "
                f"{v.clean_flagged}/{v.clean_n}, largest score {v.largest_clean_score:.3f}, threshold {v.threshold})"
            )
        r = part.iloc[0]
        lines.append(
            f"{describe(trigger) if trigger in TRIGGERS else trigger}: {text}. Clean controls flagged "
            f"{r.clean_flagged}/{r.clean_n} (largest score {r.largest_clean_score:.3f}, threshold {r.threshold}); "
            f"{n} seed(s) a rate, rates {part['poison_rate'].min():.1%}-{part['poison_rate'].max():.1%}{where}."
        )
    return lines


def cost_lines(curve: pd.DataFrame) -> list[str]:
    """What each reading costs a model: its CUL runs (and NC's) and their median seconds (the units' recorded times,
    on the hardware the curve's rows name); a reading of the same runs as another costs nothing more."""
    lines = []
    for reading, g in curve.groupby("reading", sort=False):
        if "cul_runs" not in g or g["cul_runs"].isna().all():
            continue  # a curve from rows without their CUL runs: no cost to state
        same = {"peak": " (the runs stop reads: nothing more)", "nc-top2": f" (stop's) + NC on {NC_TOP} labels"}.get(
            reading, ""
        )
        lines.append(
            f"{reading}: {int(g['cul_runs'].max())} CUL run(s) a model{same}, median "
            f"{g['median_seconds'].median():.0f} s a model."
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
    triggers = ", ".join(dict.fromkeys(curve["trigger"]))
    for variant in sorted(set(curve["reading"]) - {"stop"}):
        change = "meets" if replaces_default(curve, variant) else "does not meet"
        lines.append(f"{variant} {change} the rule to replace the default reading on {triggers} ({rule}).")
    where = f" (on {', '.join(sorted(set(map(str, curve['hardware']))))})" if "hardware" in curve else ""
    return lines + limit_lines(curve) + [f"cost, per reading{where}: " + " ".join(cost_lines(curve))]
