"""The flow, evaluation side: profile -> data -> attack.poison -> train -> suspect -> expose -> defend -> rows.

This is the one place that holds both sides of the defender's wall: it trains suspects with attacks, hands the
defender (expose/, defenses/) only what a defender has, and evaluates with the attack afterwards. Every unit
is a cached unit (`units.cached_unit`), a pure function of its parameters: a model under a key of (data, training
recipe, attack, seed), an exposure under (model key, CUL settings, restart, monitor size). Which models exist is
the zoo's business (`zoo.py`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from .attacks import Attack, make_attack
from .config import Profile, as_dict
from .data import ImageData, load_data
from .defenses import detect_label, shares_at_stop
from .expose import clean_unlearn
from .models import build_model
from .results import hardware_name, tidy_rows
from .train import class_shares, evaluate, pick_device, train_model
from .units import cached_unit

MODEL_VERSION = 2              # bump when training code changes what a key's model is (2: seeded initialisation)


@dataclass
class Suspect:
    model: torch.nn.Module
    attack: Attack | None        # evaluation side only: never handed to expose/ or defenses/
    seed: int
    key: str
    record: dict                 # CA/ASR/RA, poisoned count, training seconds, hardware, threads (the unit's record)

    @property
    def label(self) -> str:
        return self.attack.label if self.attack is not None else "clean"


def setup(profile: Profile, data_dir=None, device="auto", cache_dir="cache") -> ImageData:
    """Load the profile's dataset onto the chosen device."""
    return load_data(profile.data, data_dir=data_dir, cache_dir=cache_dir, device=pick_device(device))


def data_key(cfg) -> dict:
    """The data settings in a model's key; fields added later are left out at their "off" value, so that models
    trained before they existed keep their keys."""
    out = as_dict(cfg)
    if not out.get("resolution"):
        out.pop("resolution", None)
    return out


def model_params(profile: Profile, data: ImageData, attack: Attack | None, seed: int) -> dict:
    """Every parameter that decides a trained model: its unit's key."""
    return {"version": MODEL_VERSION, "data": data.fingerprint(), "data_config": data_key(profile.data),
            "train": as_dict(profile.train), "attack": attack.params() if attack is not None else None, "seed": seed}


def new_model(profile: Profile, data: ImageData, seed: int | None = None):
    """The profile's architecture; initialised from `seed` when given (the initial weights are part of what a
    model seed fixes: unseeded, they would depend on whatever drew random numbers before in the process)."""
    t = profile.train
    if seed is not None:
        torch.manual_seed(seed)
    return build_model(t.model, data.num_classes, t.widths, t.stem_width, t.activation)


def model_from_tensors(profile: Profile, data: ImageData, tensors: dict, prefix: str = "") -> torch.nn.Module:
    """A model of the profile's architecture with weights from a unit's tensors, on the data's device, in eval
    mode and channels_last. Computed and cached units both pass through here, so what follows (CUL, defenses)
    starts from the same model whether this process trained it or loaded it. The throw-away initial weights
    draw from a forked RNG, so loading a model leaves the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        model = new_model(profile, data)
    model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    return model.to(data.train_x.device, memory_format=torch.channels_last).eval()


COMPONENT_VERSION = 1          # bump when an attack's trained component (surrogate, generator, encoder) changes


def prepare_attack(attack: Attack, data: ImageData, cache_dir="cache", progress: bool = True) -> Attack:
    """Load (or train and cache) the attack's trained component, if it has one: a cached unit of kind "attack"
    under (attack parameters, the data it was trained on), trained on the attacker's clean training images.
    Returns the attack, ready to poison and trigger; the component's training seconds are in
    attack.component_record."""
    if not attack.needs_fit or attack.fitted:
        return attack

    def compute():
        tensors = attack.fit(data.train_x, data.train_y, data.num_classes, progress=progress)
        return tensors, {"attack": attack.params()}

    params = {"version": COMPONENT_VERSION, "attack": attack.params(), "data": data.fingerprint()}
    unit = cached_unit("attack", params, compute, cache_dir, device=data.train_x.device,
                       label=f"{attack.name} component")
    attack.load_component({k: v.to(data.train_x.device) for k, v in unit.tensors.items()})
    attack.component_record = {"key": unit.key, "seconds": unit.record["seconds"], "computed": unit.computed}
    return attack


def train_suspect(profile: Profile, data: ImageData, attack: Attack | str | None = None, seed: int = 0,
                  cache_dir="cache", progress: bool = True, attack_params: dict | None = None) -> Suspect:
    """Train (or load from cache) a model on data poisoned by `attack` (None = clean model): a cached unit.

    `attack` is an Attack or a registry name; a name is built with `attack_params`, its trigger and poison
    choice seeded by the model seed unless attack_params says otherwise."""
    if isinstance(attack, str):
        attack = make_attack(attack, **{"seed": seed, **(attack_params or {})})
    name = attack.name if attack is not None else "clean"
    if attack is not None:
        prepare_attack(attack, data, cache_dir, progress)

    def compute():
        x, y, poisoned = data.train_x, data.train_y, torch.empty(0, dtype=torch.long)
        if attack is not None:
            x, y, poisoned = attack.poison(data.train_x, data.train_y, data.num_classes)
        start = time.perf_counter()
        model = train_model(new_model(profile, data, seed).to(data.train_x.device), x, y, profile.train, seed,
                            progress, desc=f"train {name}")
        info = {"attack": attack.params() if attack else None, "seed": seed, "n_train": len(y),
                "n_poisoned": len(poisoned), "train_seconds": time.perf_counter() - start,
                **evaluate(model, data, attack)}
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        if attack is not None:
            tensors.update(attack.trigger_tensors(*data.train_x.shape[-2:]))
            tensors["poisoned_indices"] = poisoned
        return tensors, info

    unit = cached_unit("model", model_params(profile, data, attack, seed), compute, cache_dir,
                       device=data.train_x.device, label=f"{name} seed {seed}")
    record = {**unit.info, "key": unit.key, "hardware": unit.record["hardware"],
              "threads": unit.record["threads"], "computed": unit.computed}
    return Suspect(model_from_tensors(profile, data, unit.tensors, "model."), attack, seed, unit.key, record)


def expose(profile: Profile, data: ImageData, suspect: Suspect, cache_dir="cache", monitor_size: int = 2000,
           progress: bool = True, restart: int = 0):
    """Clean Unlearning of a suspect (defender side), with test CA/ASR logged per epoch by the evaluation side
    on `monitor_size` test images (0 = no monitor). `restart` seeds the CUL run.

    Returns (exposed model, log): a cached unit under (model key, CUL settings, restart, monitor size); the
    log's attrs hold stop_epoch, collapsed, seconds, computed and the unit's key."""
    def compute():
        monitor_data = subset_test(data, monitor_size)
        monitor = (lambda m: evaluate(m, monitor_data, suspect.attack)) if monitor_size else None
        exposed, log = clean_unlearn(suspect.model, data.defense_x, data.defense_y, profile.cul, data.num_classes,
                                     probe_x=data.probe_x, seed=restart, progress=progress, monitor=monitor)
        return exposed.state_dict(), {"rows": log.to_dict("records"), "attrs": log.attrs}

    params = {"suspect": suspect.key, "cul": as_dict(profile.cul), "restart": restart, "monitor_size": monitor_size}
    unit = cached_unit("cul", params, compute, cache_dir, device=data.train_x.device,
                       label=f"{suspect.label} seed {suspect.seed} restart {restart}")
    log = pd.DataFrame(unit.info["rows"])
    log.attrs.update(unit.info["attrs"], seconds=unit.record["seconds"], computed=unit.computed, key=unit.key)
    return model_from_tensors(profile, data, unit.tensors), log


def expose_restarts(profile: Profile, data: ImageData, suspect: Suspect, cache_dir="cache",
                    monitor_size: int = 2000, progress: bool = True) -> list:
    """The CUL logs of profile.detection.restarts runs; the first carries the evaluation monitor (and is the
    run notebook 02 shows), the others run defender-side only."""
    return [expose(profile, data, suspect, cache_dir, monitor_size if r == 0 else 0, progress, restart=r)[1]
            for r in range(profile.detection.restarts)]


def subset_test(data: ImageData, n: int) -> ImageData:
    """A seeded random subset of n test images (test files are sorted by class: never take the first n)."""
    if not n or n >= len(data.test_y):
        return data
    keep = torch.randperm(len(data.test_y), generator=torch.Generator().manual_seed(0))[:n].to(data.test_y.device)
    return ImageData(**{**data.__dict__, "test_x": data.test_x[keep], "test_y": data.test_y[keep]})


def detection_rows(profile: Profile, suspect: Suspect, logs, reference_logs, reference_clean_shares,
                   clean_shares) -> list[dict]:
    """Label detection with and without exposure, as plain records (evaluation adds the truth).

    logs: the suspect's CUL restarts; reference_logs: one list of restarts per reference model;
    *_clean_shares: class shares of the un-exposed models on the probe images."""
    thr = profile.detection.threshold
    with_cul = detect_label([shares_at_stop(log) for log in logs],
                            [[shares_at_stop(log) for log in ref] for ref in reference_logs], thr,
                            exposed=all(bool(log.attrs.get("collapsed")) for log in logs))
    without = detect_label(clean_shares, reference_clean_shares, thr)
    rows = []
    for exposure, det in (("CUL", with_cul), ("none", without)):
        rows.append({"attack": suspect.label, "seed": suspect.seed, "exposure": exposure,
                     "true_target": suspect.attack.single_target if suspect.attack else None,
                     "detected_label": det.label, "score": det.score, "flagged": det.flagged,
                     "verdict": det.verdict, "threshold": det.threshold,
                     "stop_epochs": ",".join(str(log.attrs.get("stop_epoch")) for log in logs)})
    return rows


def detection_table(profile: Profile, data: ImageData, zoo, zoo_logs, references, reference_logs) -> pd.DataFrame:
    """detection_rows for every model of the zoo (with and without CUL), with the evaluation's truth:
    `backdoored`, and `correct` = flagged with the true target. zoo_logs / reference_logs: each model's
    CUL restarts (expose_restarts)."""
    reference_clean_shares = [class_shares(r.model, data.probe_x, data.num_classes) for r in references]
    rows = [{**context(profile, data), **row} for s, logs in zip(zoo, zoo_logs)
            for row in detection_rows(profile, s, logs, reference_logs, reference_clean_shares,
                                      class_shares(s.model, data.probe_x, data.num_classes))]
    table = pd.DataFrame(rows)
    return table.assign(backdoored=table["attack"] != "clean",
                        correct=table["flagged"] & (table["detected_label"] == table["true_target"]))


def detection_summary(detections: pd.DataFrame) -> pd.DataFrame:
    """Per exposure: share of all-to-one backdoored models flagged with the right target, share of clean models
    flagged, the ROC AUC of the score (backdoored vs clean, all-to-all models included) and, for all-to-all
    models (no single target to name), the share flagged at all (NaN when the zoo has none)."""
    def one_target(g):
        return g["backdoored"] & g["true_target"].notna()

    return pd.DataFrame([{"exposure": exposure,
                          "detection_accuracy": g.loc[one_target(g), "correct"].mean(),
                          "false_flags_on_clean": g.loc[~g["backdoored"], "flagged"].mean(),
                          "all_to_all_flagged": g.loc[g["backdoored"] & ~one_target(g), "flagged"].mean(),
                          "roc_auc": roc_auc_score(g["backdoored"], g["score"]),
                          "n_backdoored": g["backdoored"].sum(), "n_clean": (~g["backdoored"]).sum()}
                         for exposure, g in detections.groupby("exposure")]).set_index("exposure")


def context(profile: Profile, data: ImageData) -> dict:
    """Columns every result row of this run carries (seed is added per row)."""
    return {"profile": profile.name, "dataset": data.name, "hardware": hardware_name(data.train_x.device)}


# ------------------------------------------------------------------------------------------ tables
def model_table(profile: Profile, data: ImageData, suspects) -> pd.DataFrame:
    """Tidy CA / ASR / RA / training time of each model; `hardware` is where the model was trained (a zoo built
    by workers elsewhere keeps their name), `threads` the torch threads it trained with."""
    ctx = context(profile, data)
    metrics = ("CA", "ASR", "RA", "train_seconds", "n_poisoned")

    def values(s):
        out = {m: s.record[m] for m in metrics if m in s.record}
        component = getattr(s.attack, "component_record", None)
        if component:   # an attack's trained part (surrogate, generator, encoder): its own cached unit's seconds
            out["component_seconds"] = component["seconds"]
        return out

    return pd.DataFrame([row for s in suspects
                         for row in tidy_rows(values(s),
                                              **{**ctx, "hardware": s.record["hardware"]}, seed=s.seed,
                                              attack=s.label, threads=s.record["threads"])])


def exposure_table(profile: Profile, data: ImageData, suspect: Suspect, log: pd.DataFrame) -> pd.DataFrame:
    """The CUL log in tidy form: one row per (epoch, metric); shares as metric 'share' with a class column."""
    ctx = {**context(profile, data), "seed": suspect.seed, "attack": suspect.label,
           "stop_epoch": log.attrs.get("stop_epoch")}
    rows = []
    for record in log.to_dict("records"):
        for column, value in record.items():
            if column == "epoch":
                continue
            split, _, cls = column.partition("_share_")
            row = {**ctx, "epoch": record["epoch"], "metric": column, "class": None, "value": float(value)}
            if cls:
                row.update(metric=f"{split}_share", **{"class": int(cls)})
            rows.append(row)
    return pd.DataFrame(rows)
