"""Which CUL settings reproduce the exposure on the `quick` model? Measured over a small zoo.

The `quick` recipe was chosen to keep the exposure sharp (no label smoothing, no weight averaging, few
epochs: the leads of issue #7). This study then runs Clean Unlearning with several optimiser settings on a
zoo of clean and backdoored models. To fit a CPU budget these are models of the notebooks' own zoo (seeds 0
and 1), so the chosen setting is, mildly, selected on models it is later scored on: only four preset
variants are compared, and the notebooks report every model, weak ones included. For each run it records, at the
collapse point, the shares of the defender's probe images (never unlearned on) per class, and the label
detection score against the defender's clean reference models.

Writes results/exposure_fidelity.csv and figures/exposure_fidelity.{png,pdf}.

    python benchmarks/exposure_fidelity.py --data-dir data
"""
from __future__ import annotations

import argparse
import json

import pandas as pd

from ebyd_utils import pipeline as pl
from ebyd_utils import plots
from ebyd_utils.config import get_profile
from ebyd_utils.defenses import detect_label, shares_at_stop
from ebyd_utils.results import write_csv

CUL_VARIANTS = {   # CULConfig overrides on the profile's CUL
    "Adam lr 1e-4": {"optimizer": "adam", "lr": 1e-4},
    "Adam lr 3e-5": {"optimizer": "adam", "lr": 3e-5},
    "SGD lr 1e-2": {"optimizer": "sgd", "lr": 1e-2},
    "SGD lr 3e-3": {"optimizer": "sgd", "lr": 3e-3},
    "Adam lr 1e-4, BN batch stats": {"optimizer": "adam", "lr": 1e-4, "bn_eval": False},
    "Adam lr 3e-4, BN batch stats": {"optimizer": "adam", "lr": 3e-4, "bn_eval": False},
    "SGD lr 1e-2, BN batch stats": {"optimizer": "sgd", "lr": 1e-2, "bn_eval": False},
}
ZOO = [(None, 0), (None, 1), ("badnets", 0), ("badnets", 1), ("blend", 0)]


def run_variant(args, name, overrides) -> list[dict]:
    profile = get_profile(args.profile, cul=overrides)
    data = pl.setup(profile, args.data_dir, args.device, args.cache_dir)
    refs = pl.reference_models(profile, data, args.cache_dir, progress=False)
    ref_shares = [shares_at_stop(pl.expose(profile, data, r, args.cache_dir, 0, False)[1]) for r in refs]
    rows = []
    for attack, seed in ZOO:
        suspect = pl.train_suspect(profile, data, attack, seed, args.cache_dir, progress=False)
        _, log = pl.expose(profile, data, suspect, args.cache_dir, args.monitor_size, progress=False)
        shares = shares_at_stop(log)
        det = detect_label(shares, ref_shares, profile.detection.threshold, bool(log.attrs["collapsed"]))
        stop = log.attrs.get("stop_epoch")
        at_stop = log[log.epoch == stop].iloc[0] if stop is not None else log.iloc[-1]
        target = suspect.attack.target if suspect.attack else None
        rows.append({**pl.context(profile, data), "seed": seed, "cul": name, "attack": suspect.label,
                     "model_CA": suspect.record["CA"], "model_ASR": suspect.record.get("ASR"),
                     "stop_epoch": stop, "CA_at_stop": at_stop.get("CA"), "ASR_at_stop": at_stop.get("ASR"),
                     "target_share": float(shares[0 if target is None else target]),
                     "top_share": float(shares.max()), "top_class": int(shares.argmax()),
                     "detected_label": det.label, "score": det.score,
                     "shares": json.dumps([round(s, 3) for s in shares.tolist()])})
        print({k: rows[-1][k] for k in ("cul", "attack", "seed", "model_CA", "stop_epoch", "ASR_at_stop",
                                        "target_share", "top_share", "top_class", "detected_label", "score")},
              flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache-dir", default="cache")
    parser.add_argument("--monitor-size", type=int, default=1000)
    parser.add_argument("--variants", nargs="*", default=list(CUL_VARIANTS))
    args = parser.parse_args()
    df = pd.DataFrame([row for name in args.variants for row in run_variant(args, name, CUL_VARIANTS[name])])
    write_csv(df, "results/exposure_fidelity.csv")
