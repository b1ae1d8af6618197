"""What holds (notebook 10): each claim of the paper's abstract as a row, read from the sections' CSVs, with its
effect, a bootstrap interval over models, n and a verdict by one fixed rule. Trains nothing.

The claims: exposure improves (1) label detection, (2) trigger recovery, (3) model detection, (4) removal -- per
attack family and per dataset, images and text -- and (5) other exposures expose too (when notebook 07 has run).

Each effect is paired: the same models read with exposure and without, the difference averaged over the models
(label detection: flagged with the true target; trigger recovery: the true target named; removal: DER; model
detection and other exposures: ROC AUC over the models, with minus without). Its 95% interval comes from resampling
the models with replacement (BOOTSTRAP times, seeded); model detection resamples backdoored and clean models
apart, so that every resample holds both.

The verdict rule (`verdict`), the same for every row: "supported" when n >= MIN_N and the interval lies wholly
above 0, "reversed" when it lies wholly below, "not shown" otherwise -- with n, so a reader sees why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

BOOTSTRAP = 2000  # resamples of the models for every interval
MIN_N = 3  # below this many models no interval is read as support, whatever it shows
LEVEL = 0.95
FAMILIES = {  # the attack families the paper's claims are read over (our grouping of the 14 attacks)
    "patch": ("badnets", "trojan", "onepixel", "adap_patch"),
    "blend": ("blend", "adap_blend"),
    "warp/filter": ("wanet", "nashville", "smooth", "bpp"),
    "clean-label": ("sig", "lc"),
    "sample-specific": ("iad", "ssba"),
    "all-to-all": ("badnets-all2all",),
}  # text attacks are each their own family (six attacks of six kinds)
COLUMNS = [
    "claim",
    "dataset",
    "variant",
    "family",
    "measure",
    "with",
    "without",
    "effect",
    "low",
    "high",
    "n",
    "verdict",
]


def family_of(attack: str) -> str:
    """The family an attack belongs to; an attack of no family is named as itself."""
    return next((name for name, members in FAMILIES.items() if attack in members), attack)


def verdict(low: float, high: float, n: int) -> str:
    """The one rule: supported only with n >= MIN_N and an interval above 0; reversed when it is below 0."""
    if n < MIN_N:
        return f"not shown (n = {n} < {MIN_N})"
    if low > 0:
        return "supported"
    if high < 0:
        return "reversed"
    return "not shown (interval spans 0)"


def paired_rows(pairs: pd.DataFrame, claim: str, variant: str, measure: str, seed: int = 0) -> list[dict]:
    """Rows for one claim from paired readings (columns model_id, attack, dataset, with, without): over all of a
    dataset's models and per family, the mean difference and its bootstrap interval over models."""
    rows = []
    for dataset, by_set in pairs.groupby("dataset", sort=False):
        families = list(by_set.groupby(by_set["attack"].map(family_of), sort=False))
        groups = [("all", by_set)] + (families if len(families) > 1 else [])
        for family, g in groups:
            diff = (g["with"] - g["without"]).to_numpy(dtype=float)
            low, high = _interval(diff, seed)
            rows.append(
                {
                    "claim": claim,
                    "dataset": dataset,
                    "variant": variant,
                    "family": family,
                    "measure": measure,
                    "with": g["with"].mean(),
                    "without": g["without"].mean(),
                    "effect": diff.mean(),
                    "low": low,
                    "high": high,
                    "n": len(g),
                    "verdict": verdict(low, high, len(g)),
                }
            )
    return rows


def _interval(values: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (BOOTSTRAP, len(values))).mean(1)
    tail = (1 - LEVEL) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


# ---------------------------------------------------------------------------------------------- the claims
def label_detection(detections: pd.DataFrame, exposure: str = "CUL") -> pd.DataFrame:
    """Paired readings of claim 1 (03_label_detection.csv, or 09's share reading): flagged with the true target,
    with `exposure` and without; all-to-one backdoored models only (an all-to-all model has no single target)."""
    d = detections[detections["backdoored"] & detections["true_target"].notna()]
    if "reading" in d:
        d = d[d["reading"] == "share"]
    return _pairs(d, "correct", exposure)


def trigger_recovery(recovered: pd.DataFrame, exposure: str = "CUL label", method: str = "nc") -> pd.DataFrame:
    """Paired readings of claim 2 (04_trigger_recovery.csv): the true target named, NC narrowed to exposure's label
    against NC alone."""
    d = recovered[(recovered["method"] == method) & recovered["true_target"].notna()]
    return _pairs(d, "correct", exposure)


def removal(repaired: pd.DataFrame, method: str, exposure: str = "CUL") -> pd.DataFrame:
    """Paired readings of claim 4 (06_removal.csv): DER guided by the exposed model against the plain method."""
    d = repaired[(repaired["method"] == method) & repaired["DER"].notna()]
    return _pairs(d, "DER", exposure)


def with_model_id(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its models' ids. Tables written before every row carried one name a per-attack zoo row as the
    zoo did, `<attack>-s<seed>` (results/zoo_<profile>.csv): the id is rebuilt from those two columns, and refused
    where two rows of one (attack, seed, exposure, method) would then merge. Label-detection rows of that time get
    `measurable` from their verdict ("not exposed")."""
    if "verdict" in table and "measurable" not in table:  # written before the column: "not exposed" was its mark
        table = table.assign(measurable=table["verdict"] != "not exposed")
    if "model_id" in table:
        return table
    ids = table["attack"].astype(str) + "-s" + table["seed"].astype(str)
    keys = [c for c in ("exposure", "method", "reading", "detector", "metric", "epoch", "class") if c in table]
    if pd.concat([ids, table[keys]], axis=1).duplicated().any():
        raise ValueError("this table has no model_id and two models share an (attack, seed): rerun its notebook")
    return table.assign(model_id=ids)


def _pairs(table: pd.DataFrame, value: str, exposure: str) -> pd.DataFrame:
    table = with_model_id(table)
    keys = ["dataset", "model_id", "attack"]
    wide = table[table["exposure"].isin([exposure, "none"])].pivot_table(
        index=keys, columns="exposure", values=value, aggfunc="first"
    )
    wide = wide.dropna(subset=[c for c in (exposure, "none") if c in wide])
    if exposure not in wide or "none" not in wide:
        return pd.DataFrame(columns=[*keys, "with", "without"])
    return wide.rename(columns={exposure: "with", "none": "without"})[["with", "without"]].astype(float).reset_index()


def model_detection(scores: pd.DataFrame, detector: str = "exposure", seed: int = 0) -> list[dict]:
    """Claim 3 rows (05_model_scores.csv): ROC AUC with exposure minus without, over the whole zoo, its interval from
    resampling backdoored and clean models apart (the same models in both readings of a resample)."""
    d = scores[scores["detector"] == detector]
    rows = []
    for dataset, g in d.groupby("dataset", sort=False):
        wide = g.pivot_table(index=["model_id", "backdoored"], columns="exposure", values="score").reset_index()
        rows.append(
            _auc_row("3 model detection", dataset, f"{detector} score", f"the {detector} score", wide, ["CUL"], seed)
        )
    return rows


OTHER_EXPOSURES_POOLED = "other methods, mean"  # claim 5's one-row reading (the README's headline)


def other_exposure_rows(methods: pd.DataFrame, seed: int = 0) -> list[dict]:
    """Claim 5 rows (07_exposure_methods.csv): the exposure score read after each method but CUL (claim 3 reads
    CUL) as a model detector, ROC AUC minus the same score on the un-exposed models ("none"), over all of notebook
    07's models; first the mean over those methods (one resample of the models serves every method), then each."""
    others = [m for m in dict.fromkeys(methods["method"]) if m not in ("none", "cul")]
    rows = []
    for dataset, g in methods.groupby("dataset", sort=False):
        wide = g.pivot_table(index=["model_id", "backdoored"], columns="method", values="score").reset_index()
        if "none" not in wide or wide["backdoored"].nunique() < 2 or not others:
            continue
        rows.append(
            _auc_row(
                "5 other exposures",
                dataset,
                OTHER_EXPOSURES_POOLED,
                "the exposure score, mean over the other methods",
                wide,
                others,
                seed,
            )
        )
        rows += [
            _auc_row("5 other exposures", dataset, m, f"the exposure score after {m}", wide, [m], seed) for m in others
        ]
    return rows


def _auc_row(claim: str, dataset: str, variant: str, what: str, wide: pd.DataFrame, with_cols, seed: int) -> dict:
    """One AUC claim row: the mean ROC AUC of the score columns `with_cols` (the same models, backdoored vs clean)
    minus the AUC of column "none" (the un-exposed models), its interval from resampling backdoored and clean
    models apart (one resample serves every column), n, and the verdict (judged on the smaller group's size)."""
    y = wide["backdoored"].astype(int).to_numpy()
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(seed)
    p, q = rng.choice(pos, (BOOTSTRAP, len(pos))), rng.choice(neg, (BOOTSTRAP, len(neg)))
    a_with = float(np.mean([roc_auc_score(y, wide[c]) for c in with_cols]))
    a_without = roc_auc_score(y, wide["none"])
    diffs = np.mean([_auc(wide[c].to_numpy(), p, q) for c in with_cols], axis=0) - _auc(wide["none"].to_numpy(), p, q)
    low, high = (float(v) for v in np.quantile(diffs, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2]))
    return {
        "claim": claim,
        "dataset": dataset,
        "variant": variant,
        "family": "all",
        "measure": f"ROC AUC of {what} ({len(pos)} backdoored, {len(neg)} clean)",
        "with": a_with,
        "without": a_without,
        "effect": a_with - a_without,
        "low": low,
        "high": high,
        "n": len(wide),
        "verdict": verdict(low, high, min(len(pos), len(neg))),
    }


def _auc(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC of every resample at once (rows of model indices): P(backdoored > clean), ties count half."""
    a, b = score[pos][:, :, None], score[neg][:, None, :]
    return (a > b).mean((1, 2)) + 0.5 * (a == b).mean((1, 2))


def claims_table(results_dir) -> pd.DataFrame:
    """Every claim row the sections' CSVs in `results_dir` support (a section that has not run adds none)."""
    r = Path(results_dir)
    rows = []
    if (r / "03_label_detection.csv").exists():
        rows += paired_rows(
            label_detection(pd.read_csv(r / "03_label_detection.csv")),
            "1 label detection",
            "CUL",
            "flagged with the true target, CUL vs none",
        )
    if (r / "04_trigger_recovery.csv").exists():
        rows += paired_rows(
            trigger_recovery(pd.read_csv(r / "04_trigger_recovery.csv")),
            "2 trigger recovery",
            "NC, CUL label",
            "NC names the true target, narrowed to the CUL label vs NC alone",
        )
    if (r / "05_model_scores.csv").exists():
        rows += model_detection(pd.read_csv(r / "05_model_scores.csv"))
    if (r / "06_removal.csv").exists():
        repaired = pd.read_csv(r / "06_removal.csv")
        for method in ("fp", "anp", "rnp"):
            rows += paired_rows(
                removal(repaired, method),
                "4 removal",
                f"{method.upper()} guided",
                f"DER of {method.upper()}, guided by the exposed model vs plain",
            )
    if (r / "07_exposure_methods.csv").exists():
        rows += other_exposure_rows(pd.read_csv(r / "07_exposure_methods.csv"))
    from .claims_text import text_claim_rows  # built on this module's helpers: imported here, not at the top

    rows += text_claim_rows(r)
    return pd.DataFrame(rows, columns=COLUMNS)


def claim_lines(table: pd.DataFrame) -> list[str]:
    """One plain line per claim and dataset (all its models): the verdict, the effect and its interval, n."""
    rows = table[table["family"] == "all"]
    return (
        [
            f"{r.claim} on {r.dataset}, {r.variant} ({r.measure}): {r.verdict}; effect {r.effect:+.2f} "
            f"[{r.low:+.2f}, {r.high:+.2f}], with {r.with_:.2f} vs without {r.without:.2f}, n = {r.n}."
            for r in rows.rename(columns={"with": "with_"}).itertuples()
        ]
        if len(rows)
        else ["no section's results found: run notebooks 01-09 first"]
    )
