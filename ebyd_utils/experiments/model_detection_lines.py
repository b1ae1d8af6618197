"""Notebook 05's verdict lines, written from its tables (model_detection.py computes them): per detector, whether
exposure raised the ROC AUC beyond the other reading's interval; the AUC on the per-attack against the drawn rows;
per attack, the share each default rule flags. n and the interval beside every number."""

from __future__ import annotations

import pandas as pd

RULES = {
    "exposure": "excess share >= detection.threshold",
    "unlearning": "share variance > 0.01",
    "nc": "anomaly index > 2",
    "mmbd": "p <= 0.05",
}


def verdicts(metrics: pd.DataFrame) -> list[str]:
    """Per detector: did exposure raise the AUC beyond the other reading's interval, and what does each
    default rule do to clean models?"""
    lines = []
    for detector, g in metrics.groupby("detector", sort=False):
        g = g.set_index("exposure")
        if not {"none", "CUL"} <= set(g.index):
            continue
        plain, cul = g.loc["none"], g.loc["CUL"]
        if cul["auc_low"] > plain["roc_auc"] and cul["roc_auc"] > plain["auc_high"]:
            verdict = "exposure helped (each AUC outside the other's 95% interval)"
        elif plain["auc_low"] > cul["roc_auc"] and plain["roc_auc"] > cul["auc_high"]:
            verdict = "exposure hurt (each AUC outside the other's 95% interval)"
        elif cul["roc_auc"] > plain["roc_auc"]:
            verdict = "exposure raised the AUC, within the intervals' overlap (not shown to help on this zoo)"
        elif cul["roc_auc"] < plain["roc_auc"]:
            verdict = "exposure lowered the AUC, within the intervals' overlap"
        else:
            verdict = "no change in AUC"
        lines.append(
            f"{detector}: {verdict}. AUC {plain['roc_auc']:.2f} [{plain['auc_low']:.2f}, {plain['auc_high']:.2f}] "
            f"-> {cul['roc_auc']:.2f} [{cul['auc_low']:.2f}, {cul['auc_high']:.2f}]; its default rule "
            f"({RULES[detector]}) flags {plain['rule_tpr']:.0%} -> {cul['rule_tpr']:.0%} of backdoored and "
            f"{plain['rule_fpr']:.0%} -> {cul['rule_fpr']:.0%} of clean models "
            f"({int(cul['n_backdoored'])} backdoored, {int(cul['n_clean'])} clean)."
        )
    return lines


def dependence_lines(dependence: pd.DataFrame) -> list[str]:
    """Per detector and exposure: the AUC on the per-attack rows against the drawn rows, with the widest
    interval -- what a zoo of default triggers at target 0 would have reported, and how much a zoo of this size
    can tell."""
    lines = []
    for (detector, exposure), g in dependence.groupby(["detector", "exposure"], sort=False):
        g = g.set_index("zoo")
        if not {"per-attack rows", "drawn rows"} <= set(g.index):
            continue
        a, b = g.loc["per-attack rows"], g.loc["drawn rows"]
        lines.append(
            f"{detector} ({'exposed' if exposure == 'CUL' else 'suspect'}): AUC {a['roc_auc']:.2f} on the "
            f"per-attack rows ({int(a['n_backdoored'])} vs {int(a['n_clean'])}) vs {b['roc_auc']:.2f} on "
            f"the drawn ones ({int(b['n_backdoored'])} vs {int(b['n_clean'])}); 95% intervals "
            f"{a['auc_high'] - a['auc_low']:.2f} and {b['auc_high'] - b['auc_low']:.2f} wide."
        )
    return lines


def attack_lines(per_attack_table: pd.DataFrame) -> list[str]:
    """Per attack of per_attack (clean included: its share flagged is the false-positive rate): the share of its
    models each detector's default rule flags, on the suspect and on the exposed model, with n."""
    lines = []
    for attack, g in per_attack_table.groupby("attack", sort=False):
        parts = [f"{r.detector} {r.exposure} {r.flagged:.2f}" for r in g.itertuples()]
        lines.append(f"{attack} (n = {int(g['models'].iloc[0])}): flagged " + ", ".join(parts) + ".")
    return lines
