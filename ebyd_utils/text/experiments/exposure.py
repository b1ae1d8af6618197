"""What exposure does to each text model (notebook 09; the image track's `experiments/exposure.py`): every
exposure of the profile run on every model, the exposed model's readings of the defender's clean probe rows, and
the per-epoch logs in tidy form.

Two readings of one model, both defender-side: the share of probe rows predicted as each class (the image
track's reading, `defenses/label_detection.py`) and, softer, the mean predicted *probability* of each class,
which moves before a whole row flips. The evaluation side adds the truth (target, monitor CA / ASR).
"""

from __future__ import annotations

import pandas as pd
import torch

from ...train import outputs, shares_of
from ..pipeline import TextSetup, context, expose_text

READINGS = ("share", "soft")  # argmax class shares; mean class probabilities


def probe_outputs(model, tokens) -> torch.Tensor:
    """Softmax probabilities (N, K) of `tokens` (train.outputs: the batches and autocast of train.predict, so
    their argmax is predict's)."""
    return outputs(model, tokens).float().softmax(1).cpu()


def readings(setup: TextSetup, model) -> dict:
    """Both readings of one model on the probe rows, from one pass."""
    probs = probe_outputs(model, setup.probe)
    return {"share": shares_of(probs.argmax(1), setup.data.num_classes), "soft": probs.sum(0) / len(probs)}


def exposed_readings(setup: TextSetup, suspects, exposure, progress: bool = True, plain: dict | None = None) -> list:
    """For each model: the exposure's log and both readings of the exposed model (and of the model itself;
    `plain` maps a model key to those readings when they were read already)."""
    out = []
    for s in suspects:
        exposed, log = expose_text(setup, s, exposure, monitor=True, progress=progress)
        own = plain[s.key] if plain and s.key in plain else readings(setup, s.model)
        out.append({"suspect": s, "log": log, "model": exposed, "exposed": readings(setup, exposed), "plain": own})
    return out


def expose_zoo(setup: TextSetup, suspects, references, progress: bool = True) -> dict:
    """Every exposure of the profile on every model: {exposure name: (zoo readings, reference readings)}; each
    model itself is read once, whatever the number of exposures."""
    plain = {s.key: readings(setup, s.model) for s in (*suspects, *references)}
    return {
        e.name: (
            exposed_readings(setup, suspects, e, progress, plain),
            exposed_readings(setup, references, e, progress, plain),
        )
        for e in setup.profile.exposures
    }


def log_table(setup: TextSetup, exposed: dict) -> pd.DataFrame:
    """Every exposure's per-epoch log: exposure, attack, seed, role, target (the attack's; empty for clean
    models), epoch, defense_acc, share_<c> (probe rows sent to each label), target_share (to the model's own
    target) and the monitor's CA / ASR (evaluation)."""
    k = setup.data.num_classes
    frames = []
    for name, (zoo_readings, reference_readings) in exposed.items():
        for role, items in (("suspect", zoo_readings), ("reference", reference_readings)):
            for r in items:
                log, s = r["log"], r["suspect"]
                target = s.attack.target if s.attack is not None else None
                frame = pd.DataFrame(
                    {
                        "epoch": log["epoch"],
                        "defense_acc": log["defense_acc"],
                        **{f"share_{c}": log[f"probe_share_{c}"] for c in range(k)},
                        "CA": log.get("CA"),
                        "ASR": log.get("ASR"),
                    }
                )
                frame["target_share"] = frame[f"share_{target}"] if target is not None else None
                frames.append(
                    frame.assign(
                        exposure=name,
                        model_id=s.model_id,
                        attack=s.label,
                        seed=s.seed,
                        role=role,
                        target=target,
                        stop_epoch=log.attrs.get("stop_epoch"),
                        seconds=log.attrs.get("seconds"),
                    )
                )
    return pd.concat(frames, ignore_index=True).astype({"target": "Int64"}).assign(**context(setup))
