"""Ablations of the exposure (EBYD, Li et al. 2024): notebook 08's flow, evaluation side. Each sweep changes one
thing -- the defender's data, CUL's settings, the attack's strength, the suspect's training or architecture --
and every point of it is read as notebook 03 reads the zoo: the backdoored models *and a clean control* against
clean references trained and exposed under the SAME setting (a point without its own references and control is
not a reading). Every model and exposure is a cached unit, so a rerun computes only the points it has not seen.

A point is a dict: `sweep`, `value` (what the axis shows), `label`, and the overrides it makes -- `data` and
`train` (profile sections), `cul` (CUL's settings over the profile's), `attack` (attack settings), `defense` (a
subset of the defense set, `exposure_units.defense_subset`) and `fixed` (read at CUL's last epoch whether or not
it collapsed: the fixed-epochs point runs CUL with stop_acc 0, so it stops early only on a defense accuracy of 0).
"""

from __future__ import annotations

import time

import pandas as pd
from tqdm.auto import tqdm

from ..attacks import make_attack
from ..config import override
from ..core.progress import eta, report
from ..pipeline import Run, context, setup, train_suspect
from ..zoo import REFERENCE_SEED_OFFSET
from .exposure_methods import reading
from .exposure_units import defense_subset, exposures_of

SWEEPS = ("defense_set", "cul_lr", "optimizer", "stop_rule", "bn", "poison_rate", "recipe", "architecture")
# The grids each profile runs when the notebook's parameters leave a sweep to the profile (None). The profile's
# own setting is a point of every sweep (so each sweep shows its anchor); at smoke a test of the flow.
GRIDS = {
    # a test of the flow within the test suite's budget: every sweep's anchor (the profile's own setting, read
    # from the smoke zoo's cache) and one new point each where a point costs only CUL runs (50 defense images,
    # CUL at lr 1e-3); the points that train models (poison rate, recipe, architecture) or run CUL's 30 epochs
    # whole (fixed stop) are the quick grid's -- tests/test_ablations.py runs a point of each kind
    "smoke": {
        "attacks": ["badnets"],
        "train_attacks": ["badnets"],
        "seeds": [0],
        "restarts": 1,
        "defense_sizes": [50, 200],
        "leave_out": [],
        "cul_lrs": [3e-4, 1e-3],
        "optimizers": [{"optimizer": "adam"}],
        "stop_rules": ["collapse"],
        "bn_modes": ["batch"],
        "poison_rates": [0.1],
        "recipes": [{}],
        "architectures": [{}],
    },
    # from the cache of notebooks 01-06 on a 2-core AMD EPYC Zen 4 (bf16), measured in two runs: 1,606 s for the
    # grid before the EMA and 8-epoch points (label smoothing then trained its own references, ~225 s no longer
    # spent), 702 s for those two points: ~35 min in all, 5 over the notebook's 30-min budget. The cut that fits
    # it is the 1% poison point (~230 s); notebook 12 measures low rates with seeds and clean controls
    "quick": {
        "attacks": ["badnets", "blend"],
        "train_attacks": ["badnets"],
        "seeds": [0],
        "restarts": 2,
        "defense_sizes": [50, 250, 500],
        "leave_out": [0],
        "cul_lrs": [1e-4, 3e-4, 1e-3],
        "optimizers": [{"optimizer": "adam"}, {"optimizer": "sgd", "lr": 0.01}],
        "stop_rules": ["collapse", "fixed"],
        "bn_modes": ["batch", "running"],
        "poison_rates": [0.01, 0.1],
        # the suspect's recipe: label smoothing, weight averaging (EMA over ~50 of the ~400 steps) and twice the
        # training length; their references are the profile's own (_defender_side), so these cost 2 models each
        "recipes": [{}, {"label_smoothing": 0.1}, {"ema_decay": 0.98}, {"epochs": 8}],
        "architectures": [{}, {"model": "vgg_small", "lr": 0.2}],
    },
    "paper": {
        "attacks": ["badnets", "blend"],
        "train_attacks": ["badnets", "blend"],
        "seeds": [0, 1, 2],
        "restarts": 3,
        "defense_sizes": [50, 100, 250, 500, 1000, 2500],
        "leave_out": [0, 5],
        "cul_lrs": [3e-6, 1e-5, 3e-5, 1e-4],
        "optimizers": [{"optimizer": "adam"}, {"optimizer": "sgd", "lr": 0.01}],
        "stop_rules": ["collapse", "fixed"],
        "bn_modes": ["batch", "running"],
        "poison_rates": [0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
        "recipes": [{}, {"label_smoothing": 0.1}, {"ema_decay": 0.999}, {"epochs": 30, "milestones": (15, 22)}],
        "architectures": [{}, {"model": "fastcnn", "lr": 0.2}, {"model": "vgg_small", "lr": 0.1}],
    },
}
GRID_KEYS = tuple(GRIDS["quick"])


def grid(profile_name: str, **given) -> dict:
    """The profile's grid (its own, else quick's) with every parameter the notebook gives that is not None."""
    unknown = set(given) - set(GRID_KEYS)
    if unknown:
        raise ValueError(f"unknown sweep parameter(s) {sorted(unknown)}; allowed: {list(GRID_KEYS)}")
    base = GRIDS.get(profile_name, GRIDS["quick"])
    return {k: (base[k] if given.get(k) is None else given[k]) for k in GRID_KEYS}


def _label(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items()) or "profile"


def make_points(profile, sweep: str, values) -> list[dict]:
    """The points of one sweep over `values` (their meaning per sweep: see GRIDS); ValueError on an unknown sweep
    or a value out of range."""
    if sweep not in SWEEPS:
        raise ValueError(f"unknown sweep {sweep!r}; choose one of {list(SWEEPS)}")
    values = list(values)
    out = []
    if sweep == "defense_set":
        sizes = [v["size"] for v in values if "size" in v]
        largest = max(sizes, default=0)
        data = {"defense_size": largest} if largest > profile.data.defense_size else {}
        whole = max(largest, profile.data.defense_size)  # the split's whole defense set: the profile's own point
        for v in values:
            if "size" in v:
                subset = {"size": v["size"]} if v["size"] != whole else {}
                out.append({"value": v["size"], "label": f"{v['size']} images", "defense": subset})
            else:
                out.append({"value": f"w/o {v['leave_out']}", "label": f"without class {v['leave_out']}", "defense": v})
        out = [{**p, "data": data} for p in out]
    for v in values if sweep != "defense_set" else ():
        if sweep == "cul_lr":
            out.append({"value": v, "label": f"lr {v:g}", "cul": {"lr": v}})
        elif sweep == "optimizer":
            out.append({"value": _label(v), "label": _label(v), "cul": dict(v)})
        elif sweep == "stop_rule":
            if v not in ("collapse", "fixed"):
                raise ValueError(f"a stop rule is 'collapse' or 'fixed'; got {v!r}")
            fixed = v == "fixed"
            label = f"fixed {profile.cul.epochs} epochs" if fixed else f"collapse (acc <= {profile.cul.stop_acc})"
            out.append({"value": v, "label": label, "cul": {"stop_acc": 0.0} if fixed else {}, "fixed": fixed})
        elif sweep == "bn":
            if v not in ("batch", "running"):
                raise ValueError(f"a BatchNorm mode is 'batch' or 'running'; got {v!r}")
            out.append({"value": v, "label": f"BN {v} statistics", "cul": {"bn_eval": v == "running"}})
        elif sweep == "poison_rate":
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 < v < 1):
                raise ValueError(f"a poison rate must be in (0, 1); got {v!r}")
            out.append({"value": v, "label": f"{v:.1%}", "attack": {"rate": v}})
        else:  # recipe, architecture: training settings
            override(profile, {"train": dict(v)})  # a ValueError names the allowed settings
            out.append({"value": _label(v), "label": _label(v), "train": dict(v)})
    return [
        {"sweep": sweep, "fixed": False, **{k: {} for k in ("data", "train", "cul", "attack", "defense")}, **p}
        for p in out
    ]


def all_points(profile, g: dict) -> list[dict]:
    """Every point of every sweep of a grid (grid())."""
    defense = [{"size": n} for n in g["defense_sizes"]] + [{"leave_out": c} for c in g["leave_out"]]
    values = {
        "defense_set": defense,
        "cul_lr": g["cul_lrs"],
        "optimizer": g["optimizers"],
        "stop_rule": g["stop_rules"],
        "bn": g["bn_modes"],
        "poison_rate": g["poison_rates"],
        "recipe": g["recipes"],
        "architecture": g["architectures"],
    }
    return [p for sweep in SWEEPS for p in make_points(profile, sweep, values[sweep])]


_DATA = {}  # one process loads each data split once


def point_run(run: Run, point: dict) -> Run:
    """The run under the point's profile: data / train sections overridden, another data split loaded (once).
    CUL's settings are not the profile's: they go to each exposure as overrides (`read_point`), so that a point's
    CUL run is an exposure unit measured once at its stop (the profile's own CUL: the zoo's unit, reused)."""
    profile = override(run.profile, {k: point[k] for k in ("data", "train") if point[k]})
    if not point["data"]:
        return run.replace(profile=profile)
    memo = (repr(profile.data), str(run.data_dir), str(run.device), run.cache_dir)
    if memo not in _DATA:
        _DATA[memo] = setup(profile, run.data_dir, str(run.device), run.cache_dir, run.monitor_size, False).data
    return run.replace(profile=profile, data=_DATA[memo])


def _defender_side(point: dict) -> dict:
    """The point as the defender's references see it. A recipe is the suspect's, which the defender does not know:
    its references keep the profile's recipe (a defender trains them its own way), and the clean control, trained
    with the suspect's recipe, shows what the recipe alone does to the score. Every other point (data, CUL,
    architecture -- the defender holds the model, so knows it) applies to the references as well."""
    return {**point, "train": {}} if point["sweep"] == "recipe" else point


def read_point(run: Run, point: dict, attacks, seeds, restarts: int | None = None) -> list[dict]:
    """One point: its suspects (each attack at each seed), clean controls (each seed) and references, trained
    under the point's setting (restarts: CUL runs a model, None = the profile's); each exposed by its CUL
    restarts and read against the references."""
    tag, ref_point = f"{point['sweep']}={point['value']}", _defender_side(point)
    ref_tag = tag if ref_point is point else "profile"
    with_restarts = {"detection": {"restarts": restarts}} if restarts is not None else {}
    prun, ref_run = (point_run(run, p) for p in (point, ref_point))
    prun, ref_run = (r.replace(profile=override(r.profile, with_restarts)) for r in (prun, ref_run))
    zoo = prun.profile.zoo
    models = [
        (
            train_suspect(
                prun,
                make_attack(a, **{"seed": s, "target": zoo.target, **zoo.attack_params.get(a, {}), **point["attack"]}),
                s,
                model_id=f"{a}-s{s}@{tag}",
            ),
            "suspect",
        )
        for a in attacks
        for s in seeds
    ]
    models += [(train_suspect(prun, None, s, model_id=f"clean-s{s}@{tag}"), "control") for s in seeds]
    references = [
        train_suspect(ref_run, None, REFERENCE_SEED_OFFSET + i, model_id=f"reference-{i}@{ref_tag}")
        for i in range(ref_run.profile.detection.n_reference)
    ]
    defense = point["defense"] or None
    cul = point["cul"] or None
    ref_logs = [exposures_of(ref_run, r, "cul", cul, defense, evaluate_it=False) for r in references]
    rows = []
    for suspect, role in models:
        logs = exposures_of(prun, suspect, "cul", cul, defense)
        r = reading(prun, suspect, "cul", logs, ref_logs, fixed=point["fixed"])
        rows.append(
            {
                **context(prun),
                "sweep": point["sweep"],
                "value": str(point["value"]),
                "label": point["label"],
                "model_id": suspect.model_id,
                "role": role,
                "attack": suspect.label,
                "seed": suspect.seed,
                "backdoored": suspect.attack is not None,
                "true_target": suspect.attack.single_target if suspect.attack is not None else None,
                "poison_rate": suspect.attack.rate if suspect.attack is not None else None,
                "architecture": prun.profile.train.model,
                "defense_images": len(defense_subset(prun.data, **(defense or {})).defense_y),
                "CA_suspect": suspect.record.get("CA"),
                "ASR_suspect": suspect.record.get("ASR"),
                **{k: r[k] for k in ("CA", "ASR", "target_share", "detected_label", "score", "flagged")},
                **{k: r[k] for k in ("verdict", "measurable", "threshold", "stop_epochs", "restarts", "seconds")},
                "n_reference": len(references),
            }
        )
    return rows


def sweep_table(run: Run, points, attacks, seeds, restarts: int | None = None, train_attacks=None) -> pd.DataFrame:
    """read_point for every point, in order, with progress over the grid; the points that retrain every model
    (a `train` override: recipe, architecture) on `train_attacks` (None: `attacks`). The truth column `correct`
    (flagged with the true target) added last."""
    rows, start = [], time.perf_counter()
    bar = tqdm(points, desc="ablations", disable=not run.progress)
    for k, point in enumerate(bar, 1):
        bar.set_postfix_str(f"{point['sweep']}: {point['label']}")
        chosen = train_attacks if point["train"] and train_attacks is not None else attacks
        rows += read_point(run, point, chosen, seeds, restarts)
        report(f"ablations {point['sweep']} {point['label']}: {eta(k, len(points), time.perf_counter() - start)}")
    table = pd.DataFrame(rows).astype({"true_target": "Int64"})
    return table.assign(
        correct=(table["flagged"] & (table["detected_label"] == table["true_target"])).fillna(False).astype(bool)
    )


def sweep_lines(table: pd.DataFrame) -> list[str]:
    """Per sweep and point: the backdoored models flagged with their target out of n, the clean controls flagged
    out of n, beside the threshold; for the poison rate, the lowest rate each attack is still flagged at."""
    lines = []
    for sweep, g in table.groupby("sweep", sort=False):
        thr = float(g["threshold"].iloc[0])
        parts = []
        for label, p in g.groupby("label", sort=False):
            bad, ctrl = p[p["backdoored"]], p[~p["backdoored"]]
            unread = int((~bad["measurable"]).sum())
            per_attack = ", ".join(
                f"{a} {int(b['correct'].sum())} of {len(b)}" for a, b in bad.groupby("attack", sort=False)
            )
            parts.append(
                f"{label}: {per_attack} flagged with the target"
                + (f" ({unread} not exposed)" if unread else "")
                + f"; clean control {int(ctrl['flagged'].sum())} of {len(ctrl)} flagged"
                + f" (largest clean score {ctrl['score'].max():.2f})"
            )
        lines.append(f"{sweep} (threshold {thr}): " + "; ".join(parts) + ".")
        if sweep == "poison_rate":
            for attack, b in g[g["backdoored"]].groupby("attack", sort=False):
                hit = b.groupby("poison_rate")["correct"].all()
                low = hit[hit].index.min() if hit.any() else None
                lines.append(
                    f"poison_rate, {attack}: exposure shows (every model flagged with its target) down to "
                    + (f"{low:.1%}" if low is not None else "no rate tried")
                    + f"; rates tried {', '.join(f'{r:.1%}' for r in sorted(hit.index))}."
                )
    return lines
