"""The `paper` profile on one GPU, sized to fit a short lease: one BadNets ResNet-18 with the official recipe,
its CUL beside the official log, and how many zoo units one GPU runs at once.

    python benchmarks/gpu_paper_check.py --data-dir data --out results/gpu   # ~6-8 min on an H100/H200

Writes, under --out (each file as soon as its part is done, so a cut-off run still leaves what it finished):
  paper_model.json        the suspect's record (CA, ASR, RA, seconds, hardware, the recipe that ran)
  paper_cul_log.csv       CUL per epoch: defense accuracy and class shares, probe shares, test CA/ASR (monitor)
  paper_cul_summary.csv   the official setting (BN running statistics) and the quick profile's (batch statistics)
  gpu_packing.csv         seconds for 2 epochs of a paper model, one process alone vs 2 and 3 at once
If one epoch would take so long that 60 do not fit --budget-s, the recipe is shortened (epochs and milestones
scaled together) and the record says so; nothing is silently changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ebyd_utils import pipeline as pl  # noqa: E402
from ebyd_utils.config import get_profile  # noqa: E402
from ebyd_utils.train import sgd_step  # noqa: E402


def seconds_per_epoch(profile, data) -> float:
    """Time 30 training steps (after 10 warm-up steps) of the profile's model and extrapolate to one epoch."""
    model = pl.new_model(profile, data, seed=0).to(data.train_x.device, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    bs = profile.train.batch_size
    x, y = data.train_x[:bs], data.train_y[:bs]
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for i in range(40):
        if i == 10:
            sync()
            start = time.perf_counter()
        sgd_step(model, opt, x, y, use_bf16=profile.train.bf16)
    sync()
    per_step = (time.perf_counter() - start) / 30
    return per_step * len(data.train_y) / bs


def fit_recipe(profile, data, budget_s: float, overrides: dict):
    """The paper recipe, or (if 60 epochs would overrun the budget) the same recipe with fewer epochs."""
    epoch_s = seconds_per_epoch(profile, data)
    epochs = profile.train.epochs
    if epoch_s * 1.15 * epochs > budget_s:  # 15%: augmentation, schedule and evaluation on top of the steps
        scale = budget_s / (epoch_s * 1.15 * epochs)
        epochs = max(4, int(epochs * scale))
        milestones = tuple(max(1, round(m * epochs / profile.train.epochs)) for m in profile.train.milestones)
        profile = get_profile("paper", **overrides, train=dict(epochs=epochs, milestones=milestones))
    return profile, epoch_s


def packing(data_dir, cache_dir, out: Path, ns=(1, 2, 3)) -> None:
    """Wall time of 2-epoch paper trainings run as 1, 2 or 3 processes at once on the one GPU."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from ebyd_utils import pipeline as pl; from ebyd_utils.config import get_profile\n"
        "p = get_profile('paper', train=dict(epochs=2, milestones=()))\n"
        "r = pl.setup(p, %r, 'cuda', sys.argv[2], progress=False)\n"
        "pl.train_suspect(r, 'badnets', seed=int(sys.argv[1]))\n"
    )
    rows = []
    for n in ns:
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    code % (str(REPO), str(data_dir)),
                    str(100 + 10 * n + i),
                    str(cache_dir / f"pack{n}_{i}"),
                ]
            )
            for i in range(n)
        ]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - start
        rows.append(
            {
                "processes": n,
                "wall_s": round(wall, 1),
                "models_per_min": round(60 * n / wall, 2),
                "exit_codes": ",".join(map(str, codes)),
                "epochs_per_model": 2,
            }
        )
        pd.DataFrame(rows).to_csv(out / "gpu_packing.csv", index=False)
        print(rows[-1], flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--cache-dir", default="/tmp/ebyd-cache")
    ap.add_argument("--out", default="results/gpu")
    ap.add_argument("--budget-s", type=float, default=300, help="seconds the suspect's training may take")
    ap.add_argument("--skip-packing", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--attack", default="badnets", help="an attack name, or 'clean' for the clean control")
    ap.add_argument("--train-subset", type=int, default=0, help="dry runs on a CPU: train on this many images")
    args = ap.parse_args()
    out, cache = Path(args.out), Path(args.cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    overrides = {"data": dict(train_subset=args.train_subset)} if args.train_subset else {}
    profile = get_profile("paper", **overrides)
    run = pl.setup(profile, args.data_dir, args.device, cache, progress=False)
    data = run.data
    print(f"data on {data.train_x.device} in {time.perf_counter() - t0:.0f} s: {data.name}", flush=True)

    profile, epoch_s = fit_recipe(profile, data, args.budget_s, overrides)
    print(
        f"~{epoch_s:.1f} s per epoch of steps; recipe: {profile.train.epochs} epochs, milestones "
        f"{profile.train.milestones}",
        flush=True,
    )
    run = run.replace(profile=profile)
    suspect = pl.train_suspect(run, None if args.attack == "clean" else args.attack, seed=0)
    record = {
        **suspect.record,
        "epochs_run": profile.train.epochs,
        "step_estimate_s_per_epoch": epoch_s,
        "official_recipe_epochs": 60,
    }
    (out / "paper_model.json").write_text(json.dumps(record, indent=1, default=str))
    print({k: record[k] for k in ("CA", "ASR", "RA", "train_seconds", "hardware") if k in record}, flush=True)

    logs, summary = [], []
    for mode, bn_eval in (("official: BN running stats", True), ("quick's: BN batch stats", False)):
        p = get_profile(
            "paper",
            **overrides,
            train=dict(epochs=profile.train.epochs, milestones=profile.train.milestones),
            cul=dict(bn_eval=bn_eval),
        )
        start = time.perf_counter()
        _, log = pl.expose(run.replace(profile=p), suspect, monitor_size=2000)
        seconds = time.perf_counter() - start
        logs.append(log.assign(cul_mode=mode))
        stop = log.attrs["stop_epoch"]
        row = log[log.epoch == stop].iloc[0] if stop is not None else log.iloc[-1]
        probe = row.filter(like="probe_share_")
        summary.append(
            {
                "cul_mode": mode,
                "stop_epoch": stop,
                "seconds": round(seconds, 1),
                "defense_acc": row["defense_acc"],
                "test_CA": row["CA"],
                "ASR": row.get("ASR"),
                "target_share_defense": row["defense_share_0"],
                "target_share_probe": row["probe_share_0"],
                "largest_other_probe_share": probe.drop("probe_share_0").max(),
            }
        )
        pd.concat(logs).to_csv(out / "paper_cul_log.csv", index=False)
        pd.DataFrame(summary).to_csv(out / "paper_cul_summary.csv", index=False)
        print(summary[-1], flush=True)
    if not args.skip_packing:
        packing(Path(args.data_dir).resolve(), cache, out)
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
