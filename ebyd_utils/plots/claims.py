"""Notebook 10's forest plot: every claim row's effect with its 95% interval, coloured by its verdict."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

VERDICT_COLORS = {"supported": "#2a7f62", "reversed": "#b5403a"}  # "not shown ...": grey


def forest(claims: pd.DataFrame, max_rows: int = 60):
    """One line per claim row (claim, dataset, family): the effect (with exposure minus without) and its interval;
    green when supported, red when reversed, grey when not shown; n at the right."""
    rows = claims.head(max_rows).iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.2))
    for y, r in rows.iterrows():
        color = VERDICT_COLORS.get(r["verdict"], "0.6")
        ax.plot([r["low"], r["high"]], [y, y], color=color, lw=2)
        ax.plot(r["effect"], y, "o", color=color, ms=5)
        ax.text(1.02, y, f"n={int(r['n'])}", transform=ax.get_yaxis_transform(), va="center", fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    labels = [
        f"{r['claim']} | {r['dataset']} | {r['family']}"
        + (f" | {r['measure'][:24]}" if "removal" in r["claim"] else "")
        for _, r in rows.iterrows()
    ]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlabel("effect of exposure (with minus without), 95% bootstrap interval")
    fig.tight_layout()
    return fig
