"""Notebook 06's figures: each repair as an arrow from (ASR, CA) before to after, per method, with and without
exposure; and DER bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .style import color_of, display_name, model_order

EXPOSURES = {"none": "on the suspect", "CUL": "guided by the exposed model"}


def repair_arrows(table: pd.DataFrame, names: dict | None = None):
    """One panel per method: for every backdoored model an arrow from (ASR, CA) before the repair to after, solid
    for the plain method, dashed when guided by exposure; colours per attack. The top-left corner is the goal."""
    rows = table[table["attack"] != "clean"]
    methods = list(dict.fromkeys(rows["method"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.3), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        for r in rows[rows["method"] == method].itertuples():
            ax.annotate(
                "",
                xy=(r.ASR, r.CA),
                xytext=(r.ASR_before, r.CA_before),
                arrowprops=dict(
                    arrowstyle="->",
                    color=color_of(r.attack),
                    lw=1.4,
                    ls="-" if r.exposure == "none" else "--",
                    alpha=0.85,
                ),
            )
            ax.plot(r.ASR, r.CA, "o" if r.exposure == "none" else "s", color=color_of(r.attack), ms=4)
        ax.set(title=(names or {}).get(method, method), xlabel="ASR", xlim=(-0.05, 1.05))
        ax.set_ylabel("CA")
    low = min(rows["CA"].min(), rows["CA_before"].min())
    axes[0, 0].set_ylim(max(0.0, low - 0.05), 1.0)
    handles = [plt.Line2D([], [], color=color_of(a), lw=2, label=display_name(a)) for a in model_order(rows["attack"])]
    handles += [
        plt.Line2D([], [], color="black", ls=ls, label=EXPOSURES[e]) for e, ls in (("none", "-"), ("CUL", "--"))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return fig


def der_bars(table: pd.DataFrame, names: dict | None = None):
    """Mean DER per method and exposure over the backdoored models, seeds and attacks as dots; 0.5 = no change."""
    rows = table[table["attack"] != "clean"].copy()
    rows["method"] = rows["method"].map(lambda m: (names or {}).get(m, m))
    rows["exposure"] = rows["exposure"].map(EXPOSURES)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    sns.barplot(rows, x="method", y="DER", hue="exposure", errorbar=None, palette=["#bbbbbb", "#d55e00"], ax=ax)
    sns.stripplot(rows, x="method", y="DER", hue="exposure", dodge=True, color="black", size=3, legend=False, ax=ax)
    ax.axhline(0.5, color="black", lw=0.8, ls=":")
    ax.set(ylim=(0, 1.02), xlabel="", ylabel="DER (1 = perfect, 0.5 = no change)")
    ax.legend(title="", fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
