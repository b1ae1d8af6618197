"""Figures of the spine (notebooks 00-03): triggers, attack metrics, CUL curves, class shares, label-detection
scores and the pipeline diagram. Each takes a tidy DataFrame (the tables the notebooks write) and returns a
Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .style import CLEAN, color_of, display_name, model_order, palette


# ------------------------------------------------------------------------------------ trigger gallery
def trigger_gallery(images: dict, n: int = 6, title: str | None = None, deltas: dict | None = None):
    """Rows: one per entry of `images` (name -> uint8 (N, 3, H, W) batch, same images in each); columns: the
    first `n` images, then (with `deltas`, name -> float (N, 3, H, W) in [0, 1], e.g.
    trigger_eval.amplified_perturbation) the same images' perturbations, amplified. Pixels are shown unscaled
    (nearest neighbour), so a 3x3 patch is visible as drawn."""
    names = list(images)
    n = min(n, min(len(batch) for batch in images.values()))
    cols = 2 * n if deltas else n
    fig, axes = plt.subplots(len(names), cols, figsize=(1.2 * cols + 1.2, 1.2 * len(names) + 0.3), squeeze=False)
    for row, name in enumerate(names):
        panels = list(images[name][:n])
        if deltas:
            panels += list(deltas[name][:n]) if name in deltas else [None] * n
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            if panel is not None:
                image = panel.detach().cpu().permute(1, 2, 0).numpy()
                ax.imshow(image, interpolation="nearest", vmin=0, vmax=1 if image.dtype.kind == "f" else 255)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            ax.axis("on" if panel is not None else "off")
        axes[row, 0].set_ylabel(
            display_name(name), rotation=0, ha="right", va="center", color=color_of(name), fontweight="bold"
        )
    if deltas:
        axes[0, 0].set_title("triggered", loc="left")
        axes[0, n].set_title("perturbation, amplified (grey = unchanged)", loc="left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------- attack metrics
def attack_metrics(table: pd.DataFrame, metrics=("CA", "ASR", "RA")):
    """Bars of CA / ASR / RA per model kind (mean over seeds, black ticks = seeds), one panel a metric.

    `table`: tidy rows with columns attack, seed, metric, value (pipeline.model_table). The clean control has
    no trigger, so its ASR and RA panels say "n/a" instead of a bar."""
    order = model_order(table["attack"])
    width = max(3.6, 0.32 * len(order))  # a panel grows with the zoo, so 16 bars stay readable
    fig, axes = plt.subplots(1, len(metrics), figsize=(width * len(metrics), 3.4), sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        rows = table[table["metric"] == metric]
        sns.barplot(
            rows,
            x="attack",
            y="value",
            hue="attack",
            order=order,
            hue_order=order,
            palette=palette(order),
            errorbar=None,
            legend=False,
            ax=ax,
        )
        sns.stripplot(rows, x="attack", y="value", order=order, color="black", size=3, jitter=0.15, ax=ax)
        for i, name in enumerate(order):
            if rows[rows["attack"] == name].empty:
                ax.text(i, 0.03, "n/a", ha="center", va="bottom", color="0.4")
        ax.set(title=metric, xlabel="", ylabel="share of test images", ylim=(0, 1.05))
        ax.set_xticks(range(len(order)), [display_name(n) for n in order], rotation=30, ha="right")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------- CUL curves
# (panel title, metric, class selection) for our CUL logs; "target" picks each model's target class
CUL_PANELS = [
    ("defense accuracy\n(defense images, defender-side)", "defense_acc", None),
    ("target share, defense images", "defense_share", "target"),
    ("test CA (evaluation only)", "CA", None),
    ("ASR (evaluation only)", "ASR", None),
    ("target share, probe images", "probe_share", "target"),
]


def _panel_rows(table, metric, cls):
    """The rows of one panel: a metric, restricted to each model's target class where asked."""
    rows = table[table["metric"] == metric]
    if cls == "target":
        rows = rows[rows["class"] == rows["target"]]
    return rows


def _draw_model_lines(ax, rows):
    """One line per model (model_id): clean dashed, a ringed marker at the model's stop epoch."""
    for _, line in rows.groupby("model_id", sort=False):
        line, name = line.sort_values("epoch"), line["attack"].iloc[0]
        style = "--" if name == CLEAN else "-"
        ax.plot(line["epoch"], line["value"], style, color=color_of(name), lw=1.6)
        stop = pd.to_numeric(line["stop_epoch"], errors="coerce").iloc[0]
        at = line[line["epoch"] == stop]
        if not at.empty:
            ax.plot(at["epoch"], at["value"], "o", ms=7, mfc=color_of(name), mec="black", mew=1.0)


def _draw_official(ax, reference, target, stop_acc):
    """The official log: defense-image accuracy, ASR and target share, plus where our stop rule would stop."""
    styles = {
        "defense_acc": ("-", "CA on 500 defense images"),
        "ASR": (":", "ASR (poisoned test set)"),
        "defense_share": ("-.", f"share of class {target} (defense images)"),
    }
    for metric, (style, label) in styles.items():
        rows = reference[reference["metric"] == metric]
        if metric == "defense_share":
            rows = rows[rows["class"] == target]
        rows = rows.sort_values("epoch")
        ax.plot(rows["epoch"], rows["value"], style, color=color_of("badnets"), lw=1.8, label=label)
    acc = reference[reference["metric"] == "defense_acc"].sort_values("epoch")
    below = acc[acc["value"] <= stop_acc] if stop_acc is not None else acc.iloc[:0]
    if not below.empty:
        ax.axvline(below["epoch"].iloc[0], color="black", lw=0.8, ls=(0, (2, 2)))
        ax.text(below["epoch"].iloc[0], 0.5, f" our stop rule\n (acc ≤ {stop_acc:g})", fontsize=8)
    ax.legend(fontsize=7, loc="center left")


def cul_curves(
    table: pd.DataFrame, reference: pd.DataFrame | None = None, reference_target: int = 0, stop_acc: float | None = None
):
    """CUL curves: defense accuracy, target shares, test CA and ASR against the unlearning epoch.

    `table`: concatenated pipeline.exposure_table rows plus a `target` column (the class whose share is
    followed; for the clean control, the attacks' target). `reference`: the official log in tidy form (epoch,
    metric in defense_acc / ASR / defense_share, class, value), drawn in its own panel beside our
    defense-image panels, since both are measured on the defense images."""
    fig, axes = plt.subplots(2, 3, figsize=(12.5, 7), squeeze=False)
    slots = [axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1], axes[1, 2]]
    for ax, (title, metric, cls) in zip(slots, CUL_PANELS):
        rows = _panel_rows(table, metric, cls)
        _draw_model_lines(ax, rows)
        ax.set(title=title, xlabel="CUL epoch", ylabel="share", ylim=(-0.03, 1.03))
        if rows.empty:
            ax.text(0.5, 0.5, "not logged", transform=ax.transAxes, ha="center", color="0.4")
    official = axes[0, 2]
    if reference is not None:
        _draw_official(official, reference, reference_target, stop_acc)
        official.set(
            title="official log (ResNet-18, BadNets,\nCIFAR-10; defense images)",
            xlabel="CUL epoch",
            ylabel="share",
            ylim=(-0.03, 1.03),
        )
    else:
        official.axis("off")
    for ax in axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    names = model_order(table["attack"])
    handles = [Line2D([], [], color=color_of(n), ls="--" if n == CLEAN else "-", label=display_name(n)) for n in names]
    handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="stop epoch"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


# ------------------------------------------------------------------------------------- class shares
def class_share_bars(shares: pd.DataFrame, when_order=None, max_cols: int = 6):
    """Predicted-class shares before and after CUL, one panel per model, `max_cols` panels a row.

    `shares`: columns model_id, attack, seed, class, value, when (e.g. "before CUL" / "at stop epoch"), target.
    The first `when` is drawn light grey, the second in the model's colour; a triangle marks the target class
    (none for an all-to-all model, whose target is empty)."""
    shares = shares.assign(**{"class": shares["class"].astype(int)})  # CSV round-trips make it float
    when_order = when_order or list(dict.fromkeys(shares["when"]))
    order = {name: k for k, name in enumerate(model_order(shares["attack"]))}
    models = shares.drop_duplicates("model_id")
    panels = sorted(zip(models["seed"], models["attack"], models["model_id"]), key=lambda p: (p[0], order[p[1]]))
    repeated = models.duplicated(["attack", "seed"], keep=False).any()  # two models of one attack at one seed
    cols = min(max_cols, len(panels))
    rows_n = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(2.9 * cols, 2.7 * rows_n), sharey=True, squeeze=False)
    for k, (seed, name, model_id) in enumerate(panels):
        ax, rows = axes.flat[k], shares[shares["model_id"] == model_id]
        sns.barplot(
            rows,
            x="class",
            y="value",
            hue="when",
            hue_order=when_order,
            ax=ax,
            palette=["#cfcfcf", color_of(name)][: len(when_order)],
            legend=k == 0,
        )
        target = pd.to_numeric(rows["target"], errors="coerce").dropna()
        if len(target):
            target = int(target.iloc[0])
            top = rows.loc[rows["class"] == target, "value"].max()
            ax.plot(target, min(top + 0.08, 1.08), "v", color="black", ms=6)
        title = model_id if repeated else f"{display_name(name)} (seed {seed})"
        ax.set(title=title, xlabel="predicted class", ylabel="share", ylim=(0, 1.15))
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    if axes[0, 0].get_legend() is not None:
        sns.move_legend(axes[0, 0], "upper left", title=None, fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------- detection scores
def detection_scores(table: pd.DataFrame, exposures=("CUL", "none")):
    """Label-detection scores of clean vs backdoored models, one panel per exposure, threshold dashed.

    `table`: rows of pipeline.detection_rows (attack, exposure, score, threshold; with true_target and
    detected_label, a backdoored model whose top label is not its target is drawn as an X)."""
    order = model_order(table["attack"])
    exposures = [e for e in exposures if e in set(table["exposure"])]
    fig, axes = plt.subplots(1, len(exposures), figsize=(4.6 * len(exposures), 3.6), sharey=True, squeeze=False)
    for ax, exposure in zip(axes[0], exposures):
        rows = table[table["exposure"] == exposure]
        sns.boxplot(
            rows,
            x="attack",
            y="score",
            hue="attack",
            order=order,
            hue_order=order,
            ax=ax,
            palette={n: sns.desaturate(color_of(n), 0.4) for n in order},
            legend=False,
            fliersize=0,
            width=0.55,
            boxprops={"alpha": 0.5},
        )
        wrong = _wrong_label(rows)
        for subset, marker in ((rows[~wrong], "o"), (rows[wrong], "X")):
            sns.stripplot(
                subset,
                x="attack",
                y="score",
                hue="attack",
                order=order,
                hue_order=order,
                ax=ax,
                palette=palette(order),
                legend=False,
                size=6,
                jitter=0.12,
                edgecolor="black",
                linewidth=0.6,
                marker=marker,
            )
        for threshold in rows["threshold"].dropna().unique():
            ax.axhline(threshold, color="black", ls="--", lw=1)
            ax.text(len(order) - 0.5, threshold, f"threshold {threshold:g}", ha="right", va="bottom", fontsize=8)
        label = "after Clean Unlearning" if exposure == "CUL" else "no exposure"
        ax.set(title=label, xlabel="", ylabel="score (excess share over clean references)")
        ax.set_xticks(range(len(order)), [display_name(n) for n in order], rotation=30, ha="right")
    if _wrong_label(table).any():
        fig.text(0.5, -0.02, "X: the score belongs to a label other than the true target", ha="center", fontsize=9)
    fig.tight_layout()
    return fig


def _wrong_label(rows) -> pd.Series:
    """Backdoored models whose top-scoring label is not the true target (their score is no success)."""
    if not {"true_target", "detected_label"} <= set(rows.columns):
        return pd.Series(False, index=rows.index)
    return rows["true_target"].notna() & (rows["detected_label"] != rows["true_target"])
