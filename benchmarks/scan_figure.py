"""The trained-elsewhere measurement's figure and its table in docs/scan.md, both written from the CSVs that
benchmarks/scan_trained_elsewhere.py writes (never typed by hand)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

START, END = (
    "<!-- measured:start (written by benchmarks/scan_trained_elsewhere.py; do not edit) -->",
    "<!-- measured:end -->",
)


def write_figure(table: pd.DataFrame, summary: pd.DataFrame, path: Path) -> None:
    """One row per profile's arm. Left: every model's score per reading (clean grey, backdoored red; x: flagged with
    another label than the target), the thresholds dashed. Right: the ROC curve of each reading."""
    profiles = list(dict.fromkeys(summary["profile"]))
    fig, axes = plt.subplots(len(profiles), 2, figsize=(10, 4 * len(profiles)), layout="constrained", squeeze=False)
    for (ax, roc), profile in zip(axes, profiles):
        arm = summary[summary["profile"] == profile]
        _arm_panels(ax, roc, table[(table["profile"] == profile) & table["learned"]], arm)
        ax.set_title(f"{profile} ({arm['dataset'].iloc[0]}): models trained with recipes not ours", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight", metadata={"CreationDate": None})


def _arm_panels(ax, roc, learned: pd.DataFrame, summary: pd.DataFrame) -> None:
    readings = list(summary["reading"])
    for i, reading in enumerate(readings):
        g = learned[learned["reading"] == reading]
        s = summary[summary["reading"] == reading].iloc[0]
        for backdoored, colour, dx in ((False, "grey", -0.12), (True, "tab:red", 0.12)):
            h = g[g["backdoored"] == backdoored]
            wrong = (h["label"] != h["true_target"]).fillna(False).astype(bool) & backdoored
            ax.scatter([i + dx] * (~wrong).sum(), h.loc[~wrong, "score"], color=colour, s=30,
                       label=("backdoored" if backdoored else "clean") if i == 0 else None)  # fmt: skip
            ax.scatter([i + dx] * wrong.sum(), h.loc[wrong, "score"], color=colour, marker="x", s=40,
                       label="backdoored, top label not the target" if i == 0 and backdoored else None)  # fmt: skip
        ax.hlines(s["threshold"], i - 0.3, i + 0.3, ls="--", color="k", lw=0.8)
        fpr, tpr, _ = roc_curve(g["backdoored"].astype(int), g["score"])
        roc.plot(
            fpr, tpr, marker=".", label=f"{reading}: AUC {s['roc_auc']:.2f} [{s['auc_low']:.2f}, {s['auc_high']:.2f}]"
        )
    ax.set_xticks(range(len(readings)), [f"{r}\n{_ff(s)}" for r, (_, s) in zip(readings, summary.iterrows())])
    ax.set(ylabel="score (excess share; dashed: threshold)")
    ax.legend(fontsize=7)
    roc.plot([0, 1], [0, 1], ls=":", color="grey")
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC over the same models")
    roc.legend(fontsize=7, loc="lower right")


def _ff(s) -> str:
    return f"false flags {int(s['false_flags'])}/{int(s['n_clean'])}"


def docs_table(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Markdown, per profile's arm: the summary per reading, then every model's scores, then the CPU."""
    blocks = []
    for profile in dict.fromkeys(summary["profile"]):
        arm = table[table["profile"] == profile]
        blocks.append(_arm_table(arm, summary[summary["profile"] == profile]))
    return "\n\n".join(blocks)


def _arm_table(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    lines = [
        f"**Profile {table['profile'].iloc[0]} ({table['dataset'].iloc[0]})**",
        "",
        "| reading | decides by default | threshold | false flags on clean (95% exact interval) | largest clean score "
        "| backdoors flagged with their target | ROC AUC (95% bootstrap interval) | n clean / backdoored |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary.itertuples():
        lines.append(
            f"| {s.reading} | {'yes' if s.default else 'no'} | {s.threshold:g} | {s.false_flags}/{s.n_clean} = "
            f"{s.false_flag_rate:.2f} [{s.ff_low:.2f}, {s.ff_high:.2f}] | {s.largest_clean_score:.3f} | "
            f"{round(s.tpr_right_label * s.n_backdoored)}/{s.n_backdoored} | "
            f"{s.roc_auc:.2f} [{s.auc_low:.2f}, {s.auc_high:.2f}] | {s.n_clean} / {s.n_backdoored} |"
        )
    wide = table.pivot_table(index=["model_id", "recipe", "trigger"], columns="reading", values=["score", "label"],
                             aggfunc="first")  # fmt: skip
    facts = table.drop_duplicates("model_id").set_index("model_id")
    readings = list(summary["reading"])
    lines += [
        "",
        "| model | recipe | trigger | target | CA | ASR | " + " | ".join(f"{r}: label, score" for r in readings) + " |",
    ]
    lines.append("|---" * (6 + len(readings)) + "|")
    for (model_id, recipe, trigger), row in wide.iterrows():
        f = facts.loc[model_id]
        asr = "" if pd.isna(f["ASR"]) else f"{f['ASR']:.2f}"
        target = "" if pd.isna(f["true_target"]) else int(f["true_target"])
        cells = " | ".join(f"{int(row[('label', r)])}, {row[('score', r)]:.3f}" for r in readings)
        lines.append(f"| {model_id} | {recipe} | {trigger} | {target} | {f['CA']:.2f} | {asr} | {cells} |")
    not_learned = table[~table["learned"]].drop_duplicates("model_id")
    if len(not_learned):
        lines += ["", f"Not counted (backdoor not learned, ASR < 0.5): {', '.join(not_learned['model_id'])}."]
    lines += ["", f"Profile {table['profile'].iloc[0]}, {table['dataset'].iloc[0]}; {table['hardware'].iloc[0]}."]
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    """Put `text` between the markers of docs/scan.md (the rest of the page is prose)."""
    page = path.read_text()
    if START not in page or END not in page:
        raise ValueError(f"{path} lacks the markers {START!r} and {END!r}")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    path.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", page))
