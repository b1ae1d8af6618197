"""The scanner on models trained elsewhere: how often does it flag a clean model whose recipe is not ours, and does
it still find backdoors whose triggers the zoo never used?

    python benchmarks/scan_trained_elsewhere.py               # trains, scans, writes (smoke, generated data)
    python benchmarks/scan_trained_elsewhere.py --summarise   # only re-reads the scans already in the cache

The scanner's references are trained with *our* recipe (the profile's); a user's model has an unknown one. So the
models here are trained with recipes we never use -- another optimiser (AdamW), twice the epochs, label smoothing,
crop + flip augmentation, weight averaging (EMA), wider blocks with a step schedule -- half clean, half backdoored
with triggers the zoo never drew (a plus-shaped patch, a thin line, a checkerboard blend, a colour-gradient blend,
two corner patches, a one-pixel frame; targets other than 0). Each model is saved as a safetensors file and
scanned through `ebyd_utils.scan.scan`, exactly as a user's file would be, with references="train" so that both
readings are computed on every model.

Two arms, each of 12 models (6 clean, 6 backdoored), run one at a time (--profile): `smoke`, the smoke-sized FastCNN
on the generated data (minutes), and `quick`, the quick FastCNN on CIFAR-10 (about an hour on 2 CPU cores), whose
recipes depart from the quick one at most 1.5x its cost. Models, scans and reports are cached under --cache-dir, so
a rerun only summarises; a run replaces its own profile's rows in the CSV and keeps the other's.

Writes results/scan_trained_elsewhere.csv (one row per model and reading), results/scan_trained_elsewhere_summary.csv
(per reading: false flags on clean models with the exact 95% interval, TPR with the right label, ROC AUC with its
bootstrap 95% interval, n, the CPU), figures/scan_trained_elsewhere.png (+ .pdf) and the measured table of
docs/scan.md (between its markers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd
import torch

from ebyd_utils import pipeline as pl
from ebyd_utils.attacks.base import Attack
from ebyd_utils.config import as_dict, get_profile
from ebyd_utils.core.metrics import bootstrap_auc, calibrated_probabilities, roc_auc
from ebyd_utils.core.store import hardware_name, save_tensors, write_csv
from ebyd_utils.core.units import cached_unit
from ebyd_utils.experiments.clean_threshold import false_flags
from ebyd_utils.models import build_model
from ebyd_utils.scan import scan
from ebyd_utils.scan.checkpoint import file_digest
from ebyd_utils.scan.readings import default_reading
from ebyd_utils.train import evaluate, sgd_step, train_model

VERSION = 1  # bump when the training here changes what a model is
LEARNED_ASR = 0.5  # a backdoored model counts as backdoored when its trigger works (else it has nothing to find)


# ---------------------------------------------------------------------------- triggers the zoo never used
def _canvas(h, w):
    return torch.zeros(1, h, w), torch.zeros(3, h, w)


@dataclasses.dataclass
class Plus(Attack):
    """A white plus (5 px arms) near the top-left corner."""

    name = "plus"

    def trigger(self, h, w):
        mask, pattern = _canvas(h, w)
        mask[:, 4, 2:7] = mask[:, 2:7, 4] = 1
        return mask, pattern + 1


@dataclasses.dataclass
class Line(Attack):
    """A red horizontal line, 1 x 10 px, across the centre."""

    name = "line"

    def trigger(self, h, w):
        mask, pattern = _canvas(h, w)
        mask[:, h // 2, w // 2 - 5 : w // 2 + 5] = 1
        pattern[0] = 1
        return mask, pattern


@dataclasses.dataclass
class CheckerBlend(Attack):
    """A 4-px black/white checkerboard blended at alpha 0.15."""

    name = "checker_blend"

    def trigger(self, h, w):
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        return torch.full((1, h, w), 0.15), ((yy // 4 + xx // 4) % 2).float().expand(3, h, w).clone()


@dataclasses.dataclass
class GradientBlend(Attack):
    """A colour gradient (red left-right, green top-bottom) blended at alpha 0.2."""

    name = "gradient_blend"

    def trigger(self, h, w):
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        return torch.full((1, h, w), 0.2), torch.stack([xx, yy, 1 - (xx + yy) / 2])


@dataclasses.dataclass
class Corners(Attack):
    """Two yellow 2 x 2 patches, top-right and bottom-left."""

    name = "corners"

    def trigger(self, h, w):
        mask, pattern = _canvas(h, w)
        mask[:, :2, w - 2 :] = mask[:, h - 2 :, :2] = 1
        pattern[:2] = 1
        return mask, pattern


@dataclasses.dataclass
class Frame(Attack):
    """A one-pixel cyan frame around the image."""

    name = "frame"

    def trigger(self, h, w):
        mask, pattern = _canvas(h, w)
        mask[:, [0, h - 1], :] = mask[:, :, [0, w - 1]] = 1
        pattern[1:] = 1
        return mask, pattern


# ------------------------------------------------------------------------------------ recipes not ours
# profile -> recipe name -> TrainConfig overrides of that profile's recipe, or "adamw" (another optimiser altogether)
RECIPES = {
    "smoke": {
        "adamw": "adamw",
        "epochs20": {"epochs": 20},
        "label_smoothing": {"label_smoothing": 0.1},
        "crop_flip": {"crop_pad": 3, "flip": True},
        "ema": {"ema_decay": 0.98, "epochs": 12},
        "wide_multistep": {
            "widths": (48, 96, 192),
            "schedule": "multistep",
            "milestones": (6, 9),
            "lr": 0.1,
            "epochs": 12,
        },  # fmt: skip
    },
    # CIFAR-10: the quick recipe (FastCNN 32-64-128, ReLU, 16-channel stem, 4 epochs of one-cycle SGD, crop 2 +
    # flip) is ours; each of these departs from it at most 1.5x its cost (the CPU budget of this arm)
    "quick": {
        "adamw": "adamw",
        "epochs6": {"epochs": 6},
        "label_smoothing": {"label_smoothing": 0.1},
        "no_augment": {"crop_pad": 0, "flip": False},
        "ema": {"ema_decay": 0.98},
        "gelu_multistep": {
            "activation": "gelu",
            "stem_width": 24,
            "schedule": "multistep",
            "milestones": (3,),
            "lr": 0.3,
        },  # fmt: skip
    },
}
DATA = {"smoke": "synthetic", "quick": "cifar10"}  # the scan's clean data for each profile's arm


def models(profile: str) -> list:
    """(model_id, recipe, attack or None, seed): six clean models, one a recipe, and six backdoored ones with a
    trigger the zoo never drew, each on another recipe and target; seeds 200+ are never a zoo's or a reference's."""
    recipes = list(RECIPES[profile])
    triggers = [Plus(target=7), Line(target=2), CheckerBlend(target=5), GradientBlend(target=9), Corners(target=4),
                Frame(target=1)]  # fmt: skip
    clean = [(f"clean-{r}", r, None, 200 + i) for i, r in enumerate(recipes)]
    bad = [
        (f"{t.name}-{r}", r, dataclasses.replace(t, rate=0.1, seed=300 + i), 300 + i)
        for i, (t, r) in enumerate(zip(triggers, recipes))
    ]
    return clean + bad


def train_adamw(model, x, y, seed: int, epochs: int, batch_size: int, lr: float = 2e-3):
    """AdamW (weight decay 0.05) under PyTorch's one-cycle schedule, no augmentation: an optimiser our recipes never
    use; each step is the package's `sgd_step`. Epochs and batch size are the profile's."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.train().init_whitening(x[torch.randperm(len(x), generator=gen)[:5000]].float().div(255))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * math.ceil(len(x) / batch_size))
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            sgd_step(model, optimizer, x[idx], y[idx])
            schedule.step()
    return model.eval()


def train_elsewhere(run, model_id: str, recipe: str, attack, seed: int) -> tuple[Path, dict]:
    """A model trained with `recipe` (a cached unit), saved as <cache>/scan_bench/<model_id>.safetensors."""
    profile, data = run.profile, run.data
    overrides = RECIPES[profile.name][recipe]
    cfg = profile.train if overrides == "adamw" else dataclasses.replace(profile.train, **overrides)

    def compute():
        x, y = data.train_x, data.train_y
        if attack is not None:
            x, y, _ = attack.poison(x, y, data.num_classes)
        torch.manual_seed(seed)
        model = build_model(cfg.model, data.num_classes, cfg.widths, cfg.stem_width, cfg.activation)
        if overrides == "adamw":
            model = train_adamw(model, x, y, seed, cfg.epochs, cfg.batch_size)
        else:
            model = train_model(model, x, y, cfg, seed, False)
        return model.state_dict(), {"recipe": recipe, **evaluate(model, data, attack)}

    params = {"version": VERSION, "data": data.fingerprint(), "train": as_dict(cfg), "recipe": recipe, "seed": seed,
              "attack": None if attack is None else attack.params()}  # fmt: skip
    unit = cached_unit("elsewhere", params, compute, run.cache_dir, label=model_id)
    path = Path(run.cache_dir) / "scan_bench" / profile.name / f"{model_id}.safetensors"
    save_tensors(path, unit.tensors)
    info = {**unit.info, "train_seconds": unit.record["seconds"], "hardware": unit.record["hardware"]}
    return path, {**info, "activation": cfg.activation}


def scan_model(path: Path, model_id: str, activation: str, args) -> dict:
    """The scanner on one file, as a user runs it (both readings: references='train'; the user names the
    architecture and its activation); the report is reused when it is of this very file."""
    out = Path(args.cache_dir) / "scan_bench" / args.profile / model_id
    done = out / "report.json"
    if done.exists() and not args.rescan:
        report = json.loads(done.read_text())
        if report["model"]["sha256"] == file_digest(path):
            return report
    return scan(path, "fastcnn", DATA[args.profile], out, activation=activation, profile=args.profile,
                references="train", cache_dir=args.cache_dir, data_dir=args.data_dir,
                log=lambda line: print(f"  {model_id}: {line}", flush=True))  # fmt: skip


def rows_of(model_id: str, recipe: str, attack, info: dict, report: dict) -> list[dict]:
    base = {
        "model_id": model_id,
        "recipe": recipe,
        "trigger": "clean" if attack is None else attack.name,
        "true_target": None if attack is None else attack.target,
        "CA": info["CA"],
        "ASR": info.get("ASR"),
        "backdoored": attack is not None and info.get("ASR", 0) >= LEARNED_ASR,
        "learned": attack is None or info.get("ASR", 0) >= LEARNED_ASR,
        "clean_accuracy_scan": report["model"]["clean_accuracy"],
        "exposed": report["exposure"]["collapsed"],
        "stop_epochs": ",".join(str(e) for e in report["exposure"]["stop_epochs"]),
        "default": report["decided_by"],
        "scan_seconds": report["seconds"]["total"],
        "train_seconds": info["train_seconds"],
    }
    return [
        {**base, "reading": name, **{k: r[k] for k in ("label", "score", "threshold")}, "flagged": bool(r["flagged"])}
        for name, r in report["readings"].items()
    ]


def measure(args) -> pd.DataFrame:
    profile = get_profile(args.profile)
    run = pl.setup(profile, args.data_dir, device="cpu", cache_dir=args.cache_dir, progress=False)
    rows, todo = [], models(args.profile)
    for k, (model_id, recipe, attack, seed) in enumerate(todo, 1):
        print(f"[{k}/{len(todo)}] {model_id}", flush=True)
        path, info = train_elsewhere(run, model_id, recipe, attack, seed)
        rows += rows_of(model_id, recipe, attack, info, scan_model(path, model_id, info["activation"], args))
    table = pd.DataFrame(rows).astype({"true_target": "Int64"})
    table["correct"] = table["flagged"] & (table["label"] == table["true_target"]).fillna(False)
    table["p_backdoored_loo"] = float("nan")
    for _, g in table[table["learned"]].groupby("reading"):
        table.loc[g.index, "p_backdoored_loo"] = calibrated_probabilities(g["backdoored"].astype(int), g["score"])
    return table.assign(profile=args.profile, dataset=run.data.name, hardware=hardware_name("cpu"))


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per profile and reading, on the models whose backdoor was learned (and every clean one): false flags on clean
    models (exact 95% interval), TPR (flagged with the true target), ROC AUC (bootstrap 95% interval), n."""
    rows = []
    for (profile, reading), g in table[table["learned"]].groupby(["profile", "reading"], sort=False):
        arm = table[(table["profile"] == profile) & (table["reading"] == reading)]
        clean, bad = g[~g["backdoored"]], g[g["backdoored"]]
        ff = false_flags(clean["score"].where(clean["exposed"], -1.0), float(g["threshold"].iloc[0]))
        low, high = bootstrap_auc(g["backdoored"].astype(int), g["score"], resamples=2000, seed=0)
        rows.append(
            {
                "profile": profile,
                "dataset": g["dataset"].iloc[0],
                "reading": reading,
                "default": reading == default_reading(profile),
                "threshold": ff["threshold"],
                "n_clean": ff["n_clean"],
                "false_flags": ff["flagged"],
                "false_flag_rate": ff["rate"],
                "ff_low": ff["low"],
                "ff_high": ff["high"],
                "largest_clean_score": ff["largest_clean_score"],
                "n_backdoored": len(bad),
                "tpr_right_label": bad["correct"].mean(),
                "roc_auc": roc_auc(g["backdoored"].astype(int), g["score"]),
                "auc_low": low,
                "auc_high": high,
                "n_not_learned": int((~arm["learned"]).sum()),
                "hardware": g["hardware"].iloc[0],
            }
        )
    return pd.DataFrame(rows)


def merged(new: pd.DataFrame, csv: Path) -> pd.DataFrame:
    """The committed table with this run's profile replaced by `new` (each profile's arm is measured alone)."""
    if not csv.exists():
        return new
    old = pd.read_csv(csv)
    return pd.concat([old[old["profile"] != new["profile"].iloc[0]], new], ignore_index=True)


def main(argv=None) -> int:
    from scan_figure import docs_table, write_docs, write_figure  # benchmarks/scan_figure.py

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--profile",
        choices=sorted(RECIPES),
        default="smoke",
        help="smoke: the generated data (minutes); quick: CIFAR-10 (about an hour on 2 cores)",
    )
    p.add_argument("--data-dir", default=str(REPO / "data"), help="where CIFAR-10 is (profile quick)")
    p.add_argument("--cache-dir", default=str(REPO / "cache"))
    p.add_argument("--results-dir", default=str(REPO / "results"))
    p.add_argument("--figures-dir", default=str(REPO / "figures"))
    p.add_argument("--rescan", action="store_true", help="scan every model again (the models stay cached)")
    p.add_argument("--summarise", action="store_true", help="only re-read results/scan_trained_elsewhere.csv")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    csv = Path(args.results_dir) / "scan_trained_elsewhere.csv"
    table = pd.read_csv(csv) if args.summarise else merged(measure(args), csv)
    table = table.astype({"true_target": "Int64"})
    summary = summarise(table)
    if not args.summarise:
        write_csv(table, csv)
    write_csv(summary, Path(args.results_dir) / "scan_trained_elsewhere_summary.csv")
    write_figure(table, summary, Path(args.figures_dir) / "scan_trained_elsewhere.png")
    write_docs(REPO / "docs" / "scan.md", docs_table(table, summary))
    print(summary.to_string(index=False))
    print("the scanner reads a packaged copy of the table: run python -m ebyd_utils.report to refresh it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
