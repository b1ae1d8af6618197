"""Notebooks 07 and 08's figures: the exposure methods ranked by detection power and false flags, which methods
expose which attacks, the score at every point of an ablation sweep, and the penultimate features before and
after CUL. Each takes a tidy DataFrame (the tables the notebooks write) and returns a Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from .style import CLEAN, CLEAN_COLOR, color_of, display_name, model_order


def method_ranking(summary: pd.DataFrame):
    """Left: per method, the share of backdoored models flagged with their target (coloured) beside the share
    of clean models flagged (grey), methods sorted by power minus false flags; right: the score's ROC AUC with
    its 95% bootstrap interval. n and the threshold in the titles."""
    s = summary.assign(rank=summary["detection_power"].fillna(0) - summary["false_flags_on_clean"].fillna(0))
    s = s.sort_values("rank", ascending=True)
    y = np.arange(len(s))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 0.45 * len(s) + 1.6), sharey=True)
    left.barh(y + 0.2, s["detection_power"], height=0.38, color="#d55e00", label="backdoored: flagged with target")
    left.barh(y - 0.2, s["false_flags_on_clean"], height=0.38, color=CLEAN_COLOR, label="clean: flagged (false)")
    left.set(
        yticks=y,
        yticklabels=s["name"],
        xlim=(0, 1.02),
        xlabel="share of models",
        title=f"label detection (threshold {s['threshold'].iloc[0]}; "
        f"{int(s['n_backdoored'].max())} backdoored, {int(s['n_clean'].max())} clean)",
    )
    left.title.set_fontsize(9)
    left.legend(fontsize=7, loc="lower right")
    has = s["roc_auc"].notna()
    err = np.vstack([s["roc_auc"] - s["auc_low"], s["auc_high"] - s["roc_auc"]])[:, has.to_numpy()]
    right.errorbar(s.loc[has, "roc_auc"], y[has.to_numpy()], xerr=err, fmt="o", color="black", capsize=3)
    right.axvline(0.5, color="0.5", ls=":", lw=1)
    right.set(xlim=(-0.02, 1.02), xlabel="ROC AUC of the score [95% interval]", title="model detection")
    right.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def method_attack_grid(table: pd.DataFrame):
    """Rows: attacks (clean control first); columns: methods; cell: the mean label-detection score, with the
    share of models flagged with their target (any flag on clean and all-to-all rows) written in it."""
    order = model_order(table["attack"])
    methods = list(dict.fromkeys(table["method"]))
    hit = np.where(table["true_target"].notna(), table["correct"], table["flagged"])
    g = table.assign(hit=hit).groupby(["attack", "method"]).agg(score=("score", "mean"), hit=("hit", "mean"))
    score = g["score"].unstack().reindex(index=order, columns=methods)
    hits = g["hit"].unstack().reindex(index=order, columns=methods)
    fig, ax = plt.subplots(figsize=(1.0 * len(methods) + 2.2, 0.4 * len(order) + 1.4))
    image = ax.imshow(score.to_numpy(dtype=float), cmap="viridis", vmin=-0.2, vmax=1.0, aspect="auto")
    for i in range(len(order)):
        for j in range(len(methods)):
            if pd.notna(hits.iat[i, j]):
                ax.text(j, i, f"{hits.iat[i, j]:.0%}", ha="center", va="center", fontsize=7, color="white")
    ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right")
    ax.set_yticks(range(len(order)), [display_name(n) for n in order])
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="mean score (excess share)")
    ax.set_title("flagged (with the target; any flag for clean and all-to-all)", fontsize=9)
    fig.tight_layout()
    return fig


def sweep_scores(table: pd.DataFrame, sweep: str):
    """One sweep: every model's label-detection score at each point (x, in the grid's order), backdoored models
    by attack, the clean controls grey squares; an x where a model was flagged with a label other than its
    target, a hollow marker where CUL never reached its stop rule; the threshold dashed."""
    g = table[table["sweep"] == sweep]
    labels = list(dict.fromkeys(g["label"]))
    fig, ax = plt.subplots(figsize=(max(3.6, 1.1 * len(labels) + 1.5), 3.2))
    attacks = model_order(g["attack"])
    width = 0.5 / max(1, len(attacks))
    for k, attack in enumerate(attacks):
        rows = g[g["attack"] == attack]
        x = np.array([labels.index(v) for v in rows["label"]]) + (k - (len(attacks) - 1) / 2) * width
        color = color_of(attack)
        marker = "s" if attack == CLEAN else "o"
        wrong = rows["flagged"] & rows["true_target"].notna() & ~rows["correct"]
        unread = ~rows["measurable"]
        ax.scatter(x[~(wrong | unread)], rows["score"][~(wrong | unread)], color=color, marker=marker, s=36, zorder=3)
        ax.scatter(x[unread], rows["score"][unread], facecolors="none", edgecolors=color, marker=marker, s=36)
        ax.scatter(x[wrong], rows["score"][wrong], color=color, marker="x", s=40, zorder=3)
    ax.axhline(float(g["threshold"].iloc[0]), color="black", ls="--", lw=1)
    ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right")
    ax.set(ylabel="label-detection score", title=sweep.replace("_", " "))
    handles = [Line2D([], [], color=color_of(a), marker="s" if a == CLEAN else "o", ls="") for a in attacks]
    ax.legend(handles, [display_name(a) for a in attacks], fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def feature_pca(view: pd.DataFrame):
    """Panels: the penultimate features of clean (by class) and triggered (black x) images in their first two
    principal components, before and after CUL (one PCA a panel)."""
    whens = list(dict.fromkeys(view["when"]))
    fig, axes = plt.subplots(1, len(whens), figsize=(4.0 * len(whens), 3.6), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, when in zip(axes[0], whens):
        v = view[view["when"] == when]
        clean, trig = v[v["kind"] == "clean"], v[v["kind"] == "triggered"]
        ax.scatter(clean["pc1"], clean["pc2"], c=[cmap(int(c) % 10) for c in clean["label"]], s=8, alpha=0.6)
        ax.scatter(trig["pc1"], trig["pc2"], color="black", marker="x", s=10, alpha=0.7, label="triggered")
        ax.set(title=f"{v['attack'].iloc[0]}: {when}", xlabel="PC 1", ylabel="PC 2")
        ax.legend(fontsize=7, loc="best")
    fig.text(0.5, -0.02, "clean test images coloured by true class; triggered ones black", ha="center", fontsize=8)
    fig.tight_layout()
    return fig


def low_rate_curve(curve: pd.DataFrame, table: pd.DataFrame):
    """One panel per trigger: against the poison rate (log axis), the share of suspects each reading flags with
    their target, with its exact 95% interval; the suspects' median ASR dotted; each reading's clean false flags
    (k of n, the largest clean score vs its threshold) in the legend."""
    triggers = list(dict.fromkeys(curve["trigger"]))
    fig, axes = plt.subplots(1, len(triggers), figsize=(4.6 * len(triggers), 5.0), squeeze=False, sharey=True)
    readings = list(dict.fromkeys(curve["reading"]))
    for ax, trigger in zip(axes[0], triggers):
        part = curve[curve["trigger"] == trigger]
        for k, reading in enumerate(readings):
            r = part[part["reading"] == reading].sort_values("poison_rate")
            shift = 1 + 0.04 * (k - (len(readings) - 1) / 2)  # readings side by side on the log axis
            err = np.vstack([r["found_rate"] - r["found_low"], r["found_high"] - r["found_rate"]])
            label = (
                f"{reading} (clean flagged {int(r['clean_flagged'].iloc[0])}/{int(r['clean_n'].iloc[0])}, "
                f"max {r['largest_clean_score'].iloc[0]:.2f} vs {r['threshold'].iloc[0]:g})"
            )
            ax.errorbar(r["poison_rate"] * shift, r["found_rate"], yerr=err, marker="o", capsize=3, label=label)
        asr = part.drop_duplicates("poison_rate").sort_values("poison_rate")
        ax.plot(asr["poison_rate"], asr["median_ASR"], ls=":", color="0.3", label="suspects' median ASR")
        n = table[(table["trigger"] == trigger) & (table["reading"] == readings[0])].groupby("poison_rate").size()
        ax.set(
            xscale="log", ylim=(-0.03, 1.03), xlabel="poison rate", title=f"{trigger}: {int(n.max())} seed(s) a rate"
        )
        rates = sorted(part["poison_rate"].unique())
        ax.set_xlim(rates[0] / 1.5, rates[-1] * 1.5)
        ax.xaxis.set_minor_locator(NullLocator())  # the rates tried are the only ticks
        ax.set_xticks(rates, [f"{r:.1%}" for r in rates])
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.3))  # below: the curves stay clear
    axes[0][0].set_ylabel("flagged with the target [95% interval]")
    fig.tight_layout()
    return fig
