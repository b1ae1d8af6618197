"""Where exposure stops seeing a backdoor: label detection against the poison rate, per trigger, per reading
(EBYD, Li et al. 2024, Sec. 4.1, at rates below the paper's 10%).

Every point is one trigger at one poison rate: its suspects (one a seed), read as notebook 03 reads the zoo --
against clean references trained and exposed the same way, beside clean controls (one a seed). The references
and controls do not depend on the rate or the trigger, so one set serves every point (cached units, the same
keys as notebook 08's rate axis and the zoo's). The triggers sit where the zoo's do not: a patch away from the
corners and a blend, each at a target other than the zoo's 0.

The readings, all defender-side (the suspect, the defense and probe images, the references; never the trigger, the
target or an ASR), each read off the same cached CUL runs unless it says otherwise:

- ``stop``: the default reading (`defenses.label_detection.detect_exposed`): per class, the smallest probe share
  over the restarts at each run's stop epoch, minus the references' mean share at theirs;
- ``peak``: the trajectory instead of the stop -- per class, the largest share any epoch up to the stop reached
  (smallest over restarts), minus the references' peak share: a target that leads the drift early and is overtaken
  by the collapse still counts;
- ``restarts4``: ``stop`` over 4 CUL runs instead of the profile's (2 more runs a model: CUL seeds 2 and 3);
- ``nc-top2``: exposure ranks, Neural Cleanse (Wang et al. 2019) measures: NC inverts the *suspect* for the two labels
  the ``stop`` reading ranks highest (notebook 04's "CUL label" variant, widened to two), and the smallest mask is
  compared with the same measure on the clean references (each ranked against the others): score 1 - (its mask
  L1) / (the references' smallest), flagged at >= 0.5 -- a trigger's mask at most half the smallest a clean model's
  most drifted labels need. The 0.5 is set before any low-rate model was read; the clean controls measure it.

The curve, the limits and the verdict read off the table: `low_rate_limits.py`.

Where ours differs from the paper: the paper reports rates of 1-10% on ResNet-18 with one CUL run and no clean
control; here every rate is read with the controls and intervals of notebook 03's rule.
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..attacks import make_attack
from ..config import override
from ..defenses import all_collapsed, detect_exposed, detect_label
from ..pipeline import Run, context, train_suspect
from ..zoo import REFERENCE_SEED_OFFSET
from .exposure_units import exposures_of
from .trigger_recovery import invert

READINGS = ("stop", "peak", "restarts4", "nc-top2")
NC_TOP = 2  # labels the stop reading ranks highest, inverted by NC on the suspect
NC_RATIO = 0.5  # nc-top2 flags a mask at most this fraction of the references' smallest (set a priori)
# trigger name -> (attack, its settings): a 4x4 patch off the corners and a noise blend, targets other than 0
TRIGGERS = {"patch": ("badnets", {"size": 4, "position": (10, 18), "target": 6}), "blend": ("blend", {"target": 2})}
GRIDS = {
    # a test of the flow (a low rate is computed and reported, not that it is seen): the patch at 2%, one seed
    "smoke": {"triggers": ["patch"], "rates": [0.02], "seeds": [0]},
    "quick": {"triggers": ["patch", "blend"], "rates": [0.005, 0.01, 0.02, 0.03, 0.05, 0.1], "seeds": [0, 1, 2]},
    "paper": {"triggers": ["patch", "blend"], "rates": [0.005, 0.01, 0.02, 0.03, 0.05, 0.1], "seeds": [0, 1, 2]},
}


def grid(profile_name: str, triggers=None, rates=None, seeds=None) -> dict:
    """The profile's grid (its own, else quick's), with what the notebook gives (not None); ValueError on an
    unknown trigger, a rate outside (0, 1) or no seed."""
    base = GRIDS.get(profile_name, GRIDS["quick"])
    g = {
        "triggers": list(base["triggers"] if triggers is None else triggers),
        "rates": list(base["rates"] if rates is None else rates),
        "seeds": list(base["seeds"] if seeds is None else seeds),
    }
    unknown = set(g["triggers"]) - set(TRIGGERS)
    if unknown:
        raise ValueError(f"unknown trigger(s) {sorted(unknown)}; choose from {list(TRIGGERS)}")
    bad = [r for r in g["rates"] if isinstance(r, bool) or not (isinstance(r, (int, float)) and 0 < r < 1)]
    if bad or not g["rates"]:
        raise ValueError(f"poison rates must be in (0, 1), at least one; got {g['rates']}")
    if not g["seeds"]:
        raise ValueError("give at least one seed")
    return g


def peak_shares(log: pd.DataFrame) -> torch.Tensor:
    """Per class, the largest probe share any logged epoch up to the run's stop reached (the whole log if it never
    stopped): the trajectory's reading, from the same CUL log as the stop's."""
    columns = [c for c in log.columns if c.startswith("probe_share_")]
    if not columns:
        raise ValueError("the CUL log has no probe shares; run clean_unlearn with probe_x")
    stop = log.attrs.get("stop_epoch")
    upto = log if stop is None else log[log["epoch"] <= stop]
    return torch.tensor(upto[columns].to_numpy(dtype=float).max(axis=0), dtype=torch.float32)


def read_logs(logs, reference_logs, threshold: float, how: str) -> dict:
    """One reading ("stop": notebook 03's rule, `detect_exposed`; "peak": the same on each run's peak shares) of a
    model's CUL runs against its references' runs."""
    exposed = all_collapsed(logs)
    if how == "stop":
        det = detect_exposed(logs, reference_logs, threshold)
    else:
        peaks = [[peak_shares(g) for g in ref] for ref in reference_logs]
        det = detect_label([peak_shares(log) for log in logs], peaks, threshold, exposed=exposed)
    return {"detected_label": det.label, "score": det.score, "flagged": det.flagged, "measurable": exposed}


def top_labels(logs, reference_logs, k: int = NC_TOP) -> list[int]:
    """The k labels the stop reading ranks highest (largest excess share over the references), best first."""
    excess = torch.tensor(detect_exposed(logs, reference_logs, 0.5).excess)
    return [int(c) for c in excess.argsort(descending=True, stable=True)[:k]]


def smallest_mask(run: Run, model, key: str, labels: list[int], name: str) -> tuple[int, float, float]:
    """NC on `labels` of one model (a cached unit): (the label of the smallest mask, its L1 norm, NC's seconds)."""
    result = invert(run, "nc", model, key, labels, f"nc on {name}")
    norms = {c: float(result.norms[result.index(c)]) for c in labels}
    label = min(labels, key=lambda c: (norms[c], labels.index(c)))
    return label, norms[label], float(result.seconds)


def reference_mask_floor(run: Run, references, reference_logs) -> float:
    """The clean baseline of nc-top2: the smallest NC mask over each reference's top labels, each reference ranked
    against the others (as a suspect is against all of them)."""
    base = run.profile.detection.restarts
    floors = []
    for i, ref in enumerate(references):
        others = [r[:base] for j, r in enumerate(reference_logs) if j != i]
        labels = top_labels(reference_logs[i][:base], others)
        floors.append(smallest_mask(run, ref.model, ref.key, labels, ref.model_id)[1])
    return min(floors)


def nc_top_reading(run: Run, suspect, logs, reference_logs, floor: float) -> dict:
    """nc-top2 of one model: NC on the suspect for the stop reading's top labels, against the references' floor."""
    label, norm, seconds = smallest_mask(
        run, suspect.model, suspect.key, top_labels(logs, reference_logs), suspect.model_id
    )
    exposed = all_collapsed(logs)  # unexposed: the ranking means nothing
    score = 1.0 - norm / floor
    return {"detected_label": label, "score": score, "flagged": exposed and score >= NC_RATIO, "measurable": exposed,
            "nc_seconds": seconds}  # fmt: skip


def model_readings(run: Run, suspect, reference_logs: list, restarts: int, floor: float) -> list[dict]:
    """Every reading of one model: its CUL runs (the profile's restarts, then `restarts` for restarts4) read
    against the references' runs of the same count; nc-top2 adds NC on the stop reading's top labels."""
    thr = run.profile.detection.threshold
    base = run.profile.detection.restarts
    more = run.replace(profile=override(run.profile, {"detection": {"restarts": restarts}}))
    logs = exposures_of(more, suspect, "cul")  # restart seeds 0..restarts-1; the first `base` are the zoo's units
    refs = [r[:base] for r in reference_logs]
    out = []
    for reading, runs, against in (
        ("stop", logs[:base], refs),
        ("peak", logs[:base], refs),
        ("restarts4", logs, reference_logs),
    ):
        r = read_logs(runs, against, thr, "peak" if reading == "peak" else "stop")
        out.append({"reading": reading, "restarts": len(runs), "threshold": thr, **r, "seconds": cul_seconds(runs)})
    nc = nc_top_reading(run, suspect, logs[:base], refs, floor)
    seconds = cul_seconds(logs[:base]) + nc.pop("nc_seconds")
    out.append({"reading": "nc-top2", "restarts": base, "threshold": NC_RATIO, **nc, "seconds": seconds})
    return out


def cul_seconds(logs) -> float:
    """What a reading costs: its CUL runs' recorded seconds (the units' own, on the machine that computed them)."""
    return sum(float(log.attrs.get("seconds", float("nan"))) for log in logs)


def sweep(run: Run, g: dict, restarts: int = 4) -> pd.DataFrame:
    """Every (trigger, rate, seed) suspect and every seed's clean control, each read every way (READINGS); one row
    per model and reading. The evaluation columns (true target, the suspect's CA and ASR, `correct`) come last."""
    if restarts < run.profile.detection.restarts:
        raise ValueError(f"restarts ({restarts}) must be at least the profile's ({run.profile.detection.restarts})")
    more = run.replace(profile=override(run.profile, {"detection": {"restarts": restarts}}))
    references = [
        train_suspect(run, None, REFERENCE_SEED_OFFSET + i, model_id=f"reference-{i}")
        for i in range(run.profile.detection.n_reference)
    ]
    ref_logs = [exposures_of(more, r, "cul", evaluate_it=False) for r in references]
    floor = reference_mask_floor(run, references, ref_logs)
    jobs = [("clean", None, s) for s in g["seeds"]]
    jobs += [(t, rate, s) for t in g["triggers"] for rate in g["rates"] for s in g["seeds"]]
    rows = []
    for trigger, rate, seed in tqdm(jobs, desc="low rate", disable=not run.progress):
        attack = None
        if trigger != "clean":
            name, settings = TRIGGERS[trigger]
            attack = make_attack(name, **{**settings, "rate": rate, "seed": seed})
        model_id = f"{trigger}-r{rate:g}-s{seed}" if attack is not None else f"clean-s{seed}"
        suspect = train_suspect(run, attack, seed, model_id=model_id)
        facts = {
            **context(run),
            "model_id": model_id,
            "trigger": trigger,
            "attack": suspect.label,
            "poison_rate": rate,
            "seed": seed,
            "backdoored": attack is not None,
            "true_target": attack.single_target if attack is not None else None,
            "CA_suspect": suspect.record.get("CA"),
            "ASR_suspect": suspect.record.get("ASR"),
        }
        rows += [{**facts, **r} for r in model_readings(run, suspect, ref_logs, restarts, floor)]
    table = pd.DataFrame(rows).astype({"true_target": "Int64"})
    hit = table["flagged"] & (table["detected_label"] == table["true_target"])
    return table.assign(correct=hit.fillna(False).astype(bool))


def describe(trigger: str) -> str:
    """A trigger's name with what it is, from TRIGGERS (never typed twice): "patch (badnets, size 4, ...)"."""
    attack, settings = TRIGGERS[trigger]
    return f"{trigger} ({attack}, " + ", ".join(f"{k} {v}" for k, v in settings.items()) + ")"
