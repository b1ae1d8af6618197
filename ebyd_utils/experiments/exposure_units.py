"""Every exposure as a cached unit, evaluation side: the function beside `pipeline.expose` that notebooks 07 and
08 expose with. `pipeline.expose` (the profile's CUL on the whole defense set) keeps its key; this module adds
the other methods, other CUL settings and other defense sets, each a unit of kind "exposure" under (suspect key,
method, its full settings, restart, defense set, evaluation size).

    model, log = expose_by(run, suspect, "shuffle_ft")            # the method at the profile's settings
    model, log = expose_by(run, suspect, "cul", {"lr": 1e-3})     # CUL with another learning rate
    model, log = expose_by(run, suspect, "cul", defense={"size": 100})   # on 100 of the defense images

The defender's method sees the suspect and its clean images only; afterwards the evaluation side measures CA,
ASR and RA of the exposed model on `eval_size` test images (log.attrs["evaluation"]).
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..config import as_dict, override
from ..core.units import cached_unit
from ..data import ImageData
from ..expose import CONFIGS, SEEDED, exposure_method
from ..pipeline import Run, Suspect, expose, model_from_tensors, subset_test
from ..train import evaluate

EXPOSURE_VERSION = 1  # bump when an exposure method's code changes what its units are
NAMES = {
    "none": "no exposure",
    "cul": "CUL",
    "shuffle_ft": "shuffled-label FT",
    "large_lr_ft": "large-lr FT",
    "noise_ft": "noise FT",
    "act_prune": "activation pruning",
    "awp": "weight perturbation",
    "magnitude_prune": "magnitude pruning",
    "bn_prune": "BN pruning",
}
# Per profile, each method's settings over its file's defaults (the rest: the method's file). Every method stops
# where CUL does (the profile's cul.stop_acc), so a collapse means the same whichever method made it. Smoke,
# measured on a BadNets and a clean model (2-core Zen 3): shuffled-label FT at the official Adam 1e-4 left the
# defense accuracy at 0.4-0.7 after 20 epochs, at 1e-3 it collapsed in 3-5 (BadNets onto its target, 0.83);
# noise FT at sigma 0.5 cut BadNets' defense accuracy to 0.23 in 5 epochs and the clean model's to 0.85, at 0.2
# neither; large-lr FT on true labels kept the defense accuracy at 1.0 at lr 0.1 and 1.0 (it never collapses:
# the plain baseline). Smoke's budgets are then cut to a test of the flow (3-8 epochs, 4 levels: ~2 s a method
# and model). Quick takes the measured strengths at the methods' own budgets (not measured at quick).
PROFILE_SETTINGS = {
    "smoke": {
        "shuffle_ft": {"lr": 1e-3, "epochs": 8, "batch_size": 100, "augment": False},
        "large_lr_ft": {"epochs": 3, "batch_size": 100, "augment": False},
        "noise_ft": {"sigma": 0.5, "epochs": 3, "batch_size": 100, "augment": False},
        **{m: {"levels": 4} for m in ("act_prune", "awp", "magnitude_prune", "bn_prune")},
    },
    "quick": {
        "shuffle_ft": {"lr": 1e-3, "epochs": 20},
        "large_lr_ft": {"epochs": 10},
        "noise_ft": {"sigma": 0.5, "epochs": 10},
    },
}


def method_settings(profile, method: str, overrides: dict | None = None) -> dict:
    """The method's full settings, every one in its unit's key: CUL's are the profile's `cul`; any other method
    takes its file's defaults, the profile's stop_acc, then PROFILE_SETTINGS; `overrides` last."""
    exposure_method(method)  # a ValueError names the methods
    if method == "cul":
        base = as_dict(profile.cul)
    else:
        base = {
            **as_dict(CONFIGS[method]()),
            "stop_acc": profile.cul.stop_acc,
            **PROFILE_SETTINGS.get(profile.name, {}).get(method, {}),
        }
    exposure_method(method, **{**base, **(overrides or {})})  # a ValueError names the allowed settings
    return {**base, **(overrides or {})}


def restarts_of(profile, method: str) -> int:
    """Runs per model: the profile's restarts for a seeded method, one for a deterministic one (its restarts
    would agree)."""
    return profile.detection.restarts if method in SEEDED else 1


# ------------------------------------------------------------------------------------------- defense sets
def defense_subset(data: ImageData, size: int | None = None, leave_out: int | None = None) -> ImageData:
    """The data with a smaller defense set: the first `size` images of a class-balanced order of the defense
    images (classes taken in turn, each in a seeded random order, so smaller sets are nested in larger ones), and
    without class `leave_out`. ValueError if `size` is not in [1, defense images] or `leave_out` not a class."""
    x, y = data.defense_x, data.defense_y
    if leave_out is not None:
        if not (isinstance(leave_out, int) and 0 <= leave_out < data.num_classes):
            raise ValueError(f"leave_out must be a class index in [0, {data.num_classes - 1}]; got {leave_out!r}")
        keep = y != leave_out
        x, y = x[keep], y[keep]
    if size is not None:
        if isinstance(size, bool) or not (isinstance(size, int) and 1 <= size <= len(y)):
            raise ValueError(
                f"defense size must be an int in [1, {len(y)}] (the defense images there are); got {size!r}"
            )
        gen = torch.Generator().manual_seed(0)
        per_class = [torch.nonzero(y.cpu() == c).flatten() for c in range(data.num_classes)]
        per_class = [idx[torch.randperm(len(idx), generator=gen)] for idx in per_class]
        order = [int(idx[i]) for i in range(max(map(len, per_class))) for idx in per_class if i < len(idx)]
        keep = torch.tensor(order[:size], device=y.device)
        x, y = x[keep], y[keep]
    return dataclasses.replace(data, defense_x=x, defense_y=y)


def check_defense(defense: dict | None) -> dict | None:
    allowed = {"size", "leave_out"}
    if defense is not None and (not isinstance(defense, dict) or set(defense) - allowed):
        raise ValueError(f"defense must be None or a dict with keys in {sorted(allowed)}; got {defense!r}")
    return {k: v for k, v in (defense or {}).items() if v is not None} or None


# ------------------------------------------------------------------------------------------- the unit
def expose_by(
    run: Run,
    suspect: Suspect,
    method: str = "cul",
    overrides: dict | None = None,
    restart: int = 0,
    defense: dict | None = None,
    eval_size: int | None = None,
    evaluate_it: bool = True,
):
    """Expose a suspect by `method` (defender side) at the profile's settings with `overrides`, on the defense
    set `defense` describes (None: the whole one), seeded by `restart`; then measure CA / ASR / RA on
    `eval_size` test images (None: the run's monitor_size at restart 0 when `evaluate_it`, else none; 0 = none).

    The profile's own CUL on the whole defense set is `pipeline.expose`'s unit (notebooks 02-05 share it, with
    the run's monitor on restart 0 as `pipeline.expose_restarts` runs it, whatever `evaluate_it` says);
    everything else a unit of kind "exposure". Returns (exposed model, log); log.attrs: stop_epoch, collapsed,
    seconds, computed, key, method, settings and evaluation ({} when not measured)."""
    settings = method_settings(run.profile, method, overrides)
    defense = check_defense(defense)
    if method == "cul" and defense is None and settings == as_dict(run.profile.cul):
        monitor = (None if restart == 0 else 0) if eval_size is None else eval_size
        model, log = expose(run, suspect, restart=restart, monitor_size=monitor)
        log.attrs.update(method=method, settings=settings, evaluation=_at_stop(log))
        return model, log
    if eval_size is None:
        eval_size = run.monitor_size if restart == 0 and evaluate_it else 0
    data = run.data if defense is None else defense_subset(run.data, **defense)
    fn, cfg = exposure_method(method, **settings)

    def compute():
        exposed, log = fn(
            suspect.model,
            data.defense_x,
            data.defense_y,
            cfg,
            data.num_classes,
            probe_x=data.probe_x,
            seed=restart,
            progress=run.progress,
        )
        evaluation = evaluate(exposed, subset_test(data, eval_size), suspect.attack) if eval_size else {}
        info = {"rows": log.to_dict("records"), "attrs": log.attrs, "evaluation": evaluation}
        return exposed.state_dict(), info

    params = {
        "version": EXPOSURE_VERSION,
        "suspect": suspect.key,
        "method": method,
        "settings": settings,
        "restart": restart,
        "defense": defense,
        "eval_size": eval_size,
    }
    label = f"{NAMES[method]} of {suspect.model_id} restart {restart}"
    unit = cached_unit("exposure", params, compute, run.cache_dir, device=run.device, label=label)
    log = pd.DataFrame(unit.info["rows"])
    log.attrs.update(
        unit.info["attrs"],
        seconds=unit.record["seconds"],
        computed=unit.computed,
        key=unit.key,
        method=method,
        settings=settings,
        evaluation=unit.info["evaluation"],
    )
    return model_from_tensors(run.profile, run.data, unit.tensors), log


def _at_stop(log: pd.DataFrame) -> dict:
    """CA / ASR / RA of a CUL log's monitor at its stop epoch (the last epoch if it never stopped); {} if none."""
    stop = log.attrs.get("stop_epoch")
    row = log[log["epoch"] == stop].iloc[0] if stop is not None else log.iloc[-1]
    return {k: float(row[k]) for k in ("CA", "ASR", "RA") if k in row and pd.notna(row[k])}


def exposures_of(run: Run, suspect: Suspect, method: str, overrides=None, defense=None, evaluate_it=True) -> list:
    """The logs of a suspect's restarts under one method (restart 0 measured by the evaluation when
    `evaluate_it`: the defender's references, whose CA and ASR no reading uses, are not)."""
    return [
        expose_by(run, suspect, method, overrides, restart=r, defense=defense, evaluate_it=evaluate_it)[1]
        for r in range(restarts_of(run.profile, method))
    ]


def with_profile(run: Run, **sections) -> Run:
    """The run under a profile with some sections overridden (e.g. cul=dict(lr=1e-3)); the data stay."""
    return run.replace(profile=override(run.profile, sections))
