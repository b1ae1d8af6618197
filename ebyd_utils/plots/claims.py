"""Notebook 10's forest plot: every claim row's effect with its 95% interval, coloured by its verdict."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

VERDICT_COLORS = {"supported": "#2a7f62", "reversed": "#b5403a"}  # "not shown ...": grey


def forest(claims: pd.DataFrame):
    """One line per claim row, every row given (claim, dataset, variant, family): the effect (with exposure minus
    without) and its interval; green when supported, red when reversed, grey when not shown; n at the right."""
    if claims.empty:
        raise ValueError("no claim rows to plot: run notebooks 01-09 first (make figures)")
    rows = claims.iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(10, 0.24 * len(rows) + 1.2))
    for y, r in rows.iterrows():
        color = VERDICT_COLORS.get(r["verdict"], "0.6")
        ax.plot([r["low"], r["high"]], [y, y], color=color, lw=2)
        ax.plot(r["effect"], y, "o", color=color, ms=5)
        ax.text(1.02, y, f"n={int(r['n'])}", transform=ax.get_yaxis_transform(), va="center", fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    labels = [f"{r['claim']} | {r['dataset']} | {r['variant']} | {r['family']}" for _, r in rows.iterrows()]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("effect of exposure (with minus without), 95% bootstrap interval")
    fig.tight_layout()
    return fig
