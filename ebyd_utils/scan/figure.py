"""The scan's one-page figure: how CUL erased the clean function (defense accuracy by epoch, every restart, the
references dashed), where the probe images went (the suspect's smallest share over restarts beside the
contrast), the excess per class against the threshold, and the recovered trigger beside clean images stamped."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..defenses import shares_at_stop  # noqa: E402
from ..defenses.trigger_recovery.neural_cleanse import stamp  # noqa: E402
from .readings import as_numpy_image  # noqa: E402

STAMPED = 4


def report_figure(report: dict, logs, ref_logs, trigger, clean):
    fig = plt.figure(figsize=(13, 7.5), layout="constrained")
    grid = fig.add_gridspec(2, 6)
    _curves(fig.add_subplot(grid[0, 0:2]), logs, ref_logs, report)
    _shares(fig.add_subplot(grid[0, 2:4]), logs, ref_logs, clean)
    _excess(fig.add_subplot(grid[0, 4:6]), report)
    bottom = [fig.add_subplot(grid[1, i]) for i in range(6)]
    _trigger(bottom, trigger, clean)
    fig.suptitle(f"EBYD scan: {report['verdict']} -- {report['model']['file']}", fontsize=11)
    return fig


def _curves(ax, logs, ref_logs, report):
    for r, log in enumerate(logs):
        ax.plot(log["epoch"], log["defense_acc"], marker="o", ms=3, label=f"suspect, restart {r}")
    for i, ref in enumerate(ref_logs or []):
        for log in ref:
            ax.plot(log["epoch"], log["defense_acc"], ls="--", color="grey", alpha=0.6,
                    label="references" if i == 0 and log is ref[0] else None)  # fmt: skip
    ax.axhline(report["exposure"]["cul"]["stop_acc"], color="k", lw=0.8, ls=":", label="stop")
    ax.set(xlabel="CUL epoch", ylabel="defense accuracy", title="Clean Unlearning", ylim=(0, 1.02))
    ax.legend(fontsize=7)


def _shares(ax, logs, ref_logs, clean):
    k = clean.num_classes
    suspect = torch.stack([shares_at_stop(log) for log in logs]).min(0).values
    ax.bar(range(k), suspect.tolist(), color="tab:red", alpha=0.7, label="suspect (min over restarts)")
    if ref_logs:
        ref = torch.stack([shares_at_stop(g) for r in ref_logs for g in r]).mean(0)
        ax.plot(range(k), ref.tolist(), "ko", ms=5, label="references (mean)")
    ax.axhline(1 / k, color="grey", lw=0.8, ls=":", label="uniform 1/K")
    ax.set_xticks(range(k), [str(c)[:10] for c in clean.classes], rotation=60, fontsize=7)
    ax.set(ylabel="share of probe images at the stop", title="Where clean inputs drift", ylim=(0, 1))
    ax.legend(fontsize=7)


def _excess(ax, report):
    for name, r in report["readings"].items():
        marker = "s" if name == report["decided_by"] else "^"
        ax.plot(range(len(r["excess"])), r["excess"], marker=marker, ls="-", lw=0.8, label=name)
        ax.axhline(r["threshold"], ls="--", lw=0.8, color=ax.lines[-1].get_color())
    ax.set(xlabel="class", ylabel="excess share", title="Excess per class (dashed: thresholds)")
    ax.legend(fontsize=7)


def _trigger(axes, trigger, clean):
    for ax in axes:
        ax.axis("off")
    if trigger is None or not torch.is_tensor(clean.probe_x):
        axes[0].text(0, 0.5, "no label flagged: no trigger to recover", fontsize=9)
        return
    mask, pattern = trigger["mask"], trigger["pattern"]
    axes[0].imshow(mask[0].numpy(), cmap="magma", vmin=0, vmax=1)
    axes[0].set_title(f"mask (L1 {trigger['mask_l1']:.0f} px)", fontsize=8)
    axes[1].imshow(as_numpy_image(mask * pattern))
    axes[1].set_title("mask x pattern", fontsize=8)
    images = clean.probe_x[:STAMPED].cpu().float().div(255)
    stamped = stamp(images, mask, pattern)
    for i, ax in enumerate(axes[2:]):
        ax.imshow(as_numpy_image(stamped[i]))
        ax.set_title(f"clean + trigger -> {trigger['label']}?", fontsize=8)
