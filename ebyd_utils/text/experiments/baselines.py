"""The text-side input-level baselines on the zoo, with and without exposure (notebook 09).

- STRIP (defenses/strip.py) reads a *model*: it runs on the suspect and on its exposed model. The exposed
  model has lost much of its clean function while the trigger still drives it, so a triggered row should stand
  out more from clean rows there -- that is the exposure question for STRIP, measured here.
- ONION (defenses/onion.py) reads only the *text* through a language model, so exposure cannot change it; it is
  the model-free baseline, scored by the suspect's ASR and CA on filtered rows.

Defender side: thresholds come from the defender's clean rows only (STRIP: the probe rows at a false
rejection rate; ONION: the suspicion quantile on the probe rows, the n-gram model fitted on the defense rows).
The evaluation side scores triggered and clean test rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ...config import as_dict
from ...core.units import cached_unit
from ..defenses import NgramScorer, onion_filter, onion_suspicion, strip_entropy, strip_threshold
from ..models import tokenizer_name
from ..pipeline import TextSetup, context
from ..tokens import tokens_of
from .exposure import probe_outputs


@dataclass(frozen=True)
class BaselineConfig:
    rows: int = 100  # triggered and clean test rows scored per model (seeded subset)
    strip_copies: int = 8  # STRIP copies a row (OpenBackdoor: 5; more copies, a less noisy score)
    strip_share: float = 0.25  # share of a row's words replaced per copy
    frr: float = 0.05  # clean rows the defender accepts to reject (STRIP)
    onion_clean_quantile: float = 0.95  # ONION removes words more suspicious than this quantile of clean words


def probs_fn(setup: TextSetup, model):
    """texts -> (N, K) probabilities of `model` (tokenised without the cache: perturbed rows are one-off)."""
    name, length = tokenizer_name(setup.profile.train.model), setup.profile.data.max_length

    def fn(texts):
        return probe_outputs(model, tokens_of(texts, name, length, None, setup.tokenizer, setup.device))

    return fn


def seeded_rows(texts, n: int, seed: int = 0) -> list:
    keep = sorted(random.Random(f"baseline-rows|{seed}").sample(range(len(texts)), min(n, len(texts))))
    return [texts[i] for i in keep]


def strip_rows(setup: TextSetup, suspect, exposed_model, exposure_name: str, triggered, clean, cfg) -> list:
    """STRIP's share of triggered rows flagged (TPR) and of clean test rows flagged (FPR), on the suspect and on
    its exposed model, the threshold set on the probe rows at cfg.frr."""
    rows = []
    donors = setup.data.defense_texts
    for variant, model in (("suspect", suspect.model), (exposure_name, exposed_model)):
        fn = probs_fn(setup, model)
        entropy = lambda texts, fn=fn: strip_entropy(fn, texts, donors, cfg.strip_copies, cfg.strip_share)  # noqa: E731
        threshold = strip_threshold(entropy(seeded_rows(setup.data.probe_texts, cfg.rows)), cfg.frr)
        values = {"strip_fpr": float((entropy(clean) < threshold).float().mean())}
        if triggered:
            values["strip_tpr"] = float((entropy(triggered) < threshold).float().mean())
        rows += [{"variant": f"STRIP on {variant}", "metric": k, "value": v} for k, v in values.items()]
    return rows


def onion_threshold(scorer, clean_texts, quantile: float) -> float:
    """The `quantile` of ONION suspicion over every word of the defender's clean rows."""
    scores = [f for text in clean_texts for f in onion_suspicion(scorer, text)]
    return float(torch.tensor(scores, dtype=torch.float64).quantile(quantile))


def onion_rows(setup: TextSetup, suspect, triggered, clean, clean_labels, scorer, threshold) -> list:
    """The suspect's ASR on triggered rows and CA on clean rows, before and after ONION's filter."""
    fn = probs_fn(setup, suspect.model)
    rows = []
    for variant, transform in (("no filter", lambda t: t), ("ONION", lambda t: onion_filter(scorer, t, threshold))):
        ca = float((fn(transform(clean)).argmax(1) == clean_labels).float().mean())
        rows.append({"variant": variant, "metric": "ca", "value": ca})
        if triggered:
            asr = float((fn(transform(triggered)).argmax(1) == suspect.attack.target).float().mean())
            rows.append({"variant": variant, "metric": "asr", "value": asr})
    return rows


def baseline_table(
    setup: TextSetup, suspects, exposed_models: dict, exposure_name: str, cfg: BaselineConfig = BaselineConfig()
):
    """STRIP (suspect vs exposed) and ONION rows for every model; exposed_models: suspect key -> the model exposed
    by the profile's exposure `exposure_name`. Each model's rows are a cached unit ("textbaseline")."""
    import pandas as pd

    exposure = {e.name: e for e in setup.profile.exposures}.get(exposure_name)
    if exposure is None:
        raise ValueError(
            f"exposure {exposure_name!r} is not one of the profile's {[e.name for e in setup.profile.exposures]}"
        )
    onion = {}  # ONION's n-gram model and threshold: fitted once, and only when some model's rows are missing

    def onion_fit():
        if not onion:
            scorer = NgramScorer.fit(setup.data.defense_texts)
            onion.update(
                scorer=scorer,
                threshold=onion_threshold(
                    scorer, seeded_rows(setup.data.probe_texts, cfg.rows), cfg.onion_clean_quantile
                ),
            )
        return onion["scorer"], onion["threshold"]

    rows = []
    for s in suspects:

        def compute(s=s):
            scorer, threshold = onion_fit()
            keep = seeded_rows(range(len(setup.data.test_texts)), cfg.rows)  # the same draw, as row indices
            clean = [setup.data.test_texts[i] for i in keep]
            triggered = []
            if s.attack is not None:
                texts, _, _ = s.attack.triggered_test(setup.data.test_texts, setup.data.test_labels)
                triggered = seeded_rows(texts, cfg.rows)
            found = strip_rows(setup, s, exposed_models[s.key], exposure_name, triggered, clean, cfg)
            found += onion_rows(setup, s, triggered, clean, setup.data.test_labels[keep], scorer, threshold)
            return {}, {"rows": [{**r, "onion_threshold": threshold} for r in found]}

        # the suspect's key holds its data (defense, probe and test rows) and attack; the exposed model is the
        # suspect's under this exposure
        params = {"suspect": s.key, "exposure": as_dict(exposure), "baseline": as_dict(cfg)}
        unit = cached_unit(
            "textbaseline",
            params,
            compute,
            setup.cache_dir,
            device=setup.device,
            label=f"STRIP and ONION on {s.model_id}",
        )
        rows += [
            {**context(setup), "model_id": s.model_id, "attack": s.label, "seed": s.seed, **r}
            for r in unit.info["rows"]
        ]
    return pd.DataFrame(rows)
