"""Figures of trigger recovery (notebook 04): the recovered triggers beside the true one, and NC's anomaly
indices of clean and backdoored models with and without exposure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .style import color_of, display_name, model_order, palette


def image_grid(grid: dict, title: str | None = None, size: float = 1.45):
    """Rows: grid's keys (model kinds); columns: each row's keys (e.g. "true trigger", "NC, suspect"); cells:
    an image ((3, H, W), uint8 or float in [0, 1]) or an (image, caption) pair; None draws an empty cell.
    Pixels unscaled, so a 3x3 patch shows as it is."""
    rows = list(grid)
    columns = list(dict.fromkeys(c for r in rows for c in grid[r]))
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(size * len(columns) + 1, (size + 0.25) * len(rows) + 0.4), squeeze=False
    )
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            ax, cell = axes[i, j], grid[row].get(column)
            image, caption = cell if isinstance(cell, tuple) else (cell, "")
            if image is not None:
                image = image.float() / 255 if not image.is_floating_point() else image
                ax.imshow(image.detach().cpu().permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
            ax.set_xlabel(caption, fontsize=8, labelpad=2)
            if i == 0:
                ax.set_title(column, fontsize=9)
        axes[i, 0].set_ylabel(
            display_name(row), rotation=0, ha="right", va="center", color=color_of(row), fontweight="bold"
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def anomaly_strips(table: pd.DataFrame, threshold: float = 2.0):
    """Neural Cleanse's anomaly index of the label it names, per model, without and with exposure; clean models
    grey; an X marks a backdoored model whose named label is not its target. Above the dashed line NC flags."""
    rows = table[(table["method"] == "nc") & table["exposure"].isin(["none", "CUL"])].copy()
    rows["exposure"] = rows["exposure"].map({"none": "suspect (no exposure)", "CUL": "exposed by CUL"})
    order = model_order(rows["attack"])
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    wrong = (rows["attack"] != "clean") & ~rows["correct"].astype(bool)
    for subset, marker in ((rows[~wrong], "o"), (rows[wrong], "X")):
        sns.stripplot(
            subset,
            x="exposure",
            y="anomaly_of_label",
            hue="attack",
            hue_order=order,
            palette=palette(order),
            order=["suspect (no exposure)", "exposed by CUL"],
            dodge=True,
            size=7,
            jitter=0.08,
            edgecolor="black",
            linewidth=0.6,
            marker=marker,
            ax=ax,
            legend=marker == "o",
        )
    ax.axhline(threshold, color="black", ls="--", lw=1)
    ax.text(1.45, threshold, f"flag: index > {threshold:g}", ha="right", va="bottom", fontsize=8)
    ax.set(xlabel="", ylabel="anomaly index of the named label")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [display_name(n) for n in labels], title="", fontsize=8, loc="upper left")
    if wrong.any():
        fig.text(0.5, -0.02, "X: the named label is not the true target", ha="center", fontsize=9)
    fig.tight_layout()
    return fig


def recovery_bars(summary: pd.DataFrame, metric: str = "asr_on_suspect"):
    """Per method (panel) and attack (x): the metric's mean over seeds by exposure variant, seeds as ticks."""
    methods = list(dict.fromkeys(summary["method"]))
    order = model_order(summary["attack"])
    fig, axes = plt.subplots(1, len(methods), figsize=(4.6 * len(methods), 3.4), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        rows = summary[summary["method"] == method]
        sns.barplot(rows, x="attack", y=metric, hue="exposure", order=order, errorbar=None, ax=ax, palette="Greys")
        sns.stripplot(
            rows,
            x="attack",
            y=metric,
            hue="exposure",
            order=order,
            dodge=True,
            color="black",
            size=3,
            legend=False,
            ax=ax,
        )
        ax.set(
            title=method.upper() if method == "nc" else "BTI-DBF",
            xlabel="",
            ylim=(0, 1.05),
            ylabel="ASR of the recovered trigger on the suspect",
        )
        ax.set_xticks(range(len(order)), [display_name(n) for n in order], rotation=30, ha="right")
        ax.legend(title="inverted", fontsize=8)
    fig.tight_layout()
    return fig
