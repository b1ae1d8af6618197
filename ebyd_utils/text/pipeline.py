"""The text track's flow, the image pipeline's twin: data -> attack -> train -> expose -> rows.

Trained models and exposures are cached units (ebyd_utils.core.units) of kinds "textmodel" and "textcul", keyed by
every parameter that decides them; the defender side (exposure, detection) sees the suspect model and the
clean defense / probe rows only, the evaluation side adds the attack's triggered test rows.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import torch

from ..config import as_dict
from ..core.store import hardware_name
from ..core.units import cached_unit
from ..expose import clean_unlearn
from ..pipeline import Suspect
from ..train import pick_device
from .attacks import make_text_attack
from .config import TextExposureConfig, TextProfile
from .data import TextData, load_text
from .models import TINY_BERT, TINY_BERT_INIT_SEED, build_text_model, select_trainable, tokenizer_name
from .tokens import Tokens, load_tokenizer, tokens_of
from .train import evaluate_text, train_text_model

TEXT_MODEL_VERSION = 1


@dataclass
class TextSetup:
    """A text profile's data, tokenised on the device: what every section reads."""

    profile: TextProfile
    data: TextData
    device: torch.device
    cache_dir: str
    data_dir: str | None

    def tokens(self, texts) -> Tokens:
        return tokens_of(
            texts,
            tokenizer_name(self.profile.train.model),
            self.profile.data.max_length,
            self.cache_dir,
            self.tokenizer,
            self.device,
        )

    @cached_property
    def tokenizer(self):
        return load_tokenizer(tokenizer_name(self.profile.train.model))

    def by_length(self, texts, labels=None):
        """(tokens, labels) with the rows sorted by length: for sets read as a whole (accuracy, shares), where
        order does not matter and a batch of similar rows carries little padding (about 2x faster on SST-2)."""
        tokens = self.tokens(texts)
        order = torch.sort(tokens.attention_mask.sum(1).cpu(), stable=True).indices
        return tokens[order.to(self.device)], None if labels is None else labels[order].to(self.device)

    @cached_property
    def _test(self):
        return self.by_length(self.data.test_texts, self.data.test_labels)

    @cached_property
    def _defense(self):
        return self.by_length(self.data.defense_texts, self.data.defense_labels)

    # the clean test rows and the defender's labelled defense rows, sorted by length, with their labels
    test = property(lambda self: self._test[0])
    test_labels = property(lambda self: self._test[1])
    defense = property(lambda self: self._defense[0])
    defense_labels = property(lambda self: self._defense[1])

    @cached_property
    def probe(self) -> Tokens:
        return self.by_length(self.data.probe_texts)[0]

    def labels(self, labels) -> torch.Tensor:
        return labels.to(self.device)


def setup_text(profile: TextProfile, data_dir=None, device="auto", cache_dir="cache") -> TextSetup:
    """Load the profile's dataset (hub when data_dir is None, else data_dir/<name>/), split off the defender's
    rows; tokens are made (and cached) when first read."""
    d = profile.data
    data = load_text(
        d.dataset, data_dir, d.defense_size, d.probe_size, d.train_subset, d.test_subset, d.split_seed, d.max_words
    )
    return TextSetup(profile, data, pick_device(device), str(cache_dir), None if data_dir is None else str(data_dir))


def make_attack(setup: TextSetup, name: str, seed: int):
    """The profile's attack `name` (target, rate; seeded by the model seed). Paraphrase attacks read their
    released rewrites from the data folder."""
    params = {
        "target": setup.profile.target,
        "rate": setup.profile.rate,
        "seed": seed,
        **setup.profile.attack_params.get(name, {}),
    }
    attack = (
        make_text_attack(name, **params)
        if name not in ("synbkd", "stylebkd")
        else make_text_attack(name, **params, dataset=setup.profile.data.dataset, data_dir=setup.data_dir)
    )
    return attack


def model_params(setup: TextSetup, attack, seed: int) -> dict:
    p = setup.profile
    params = {
        "version": TEXT_MODEL_VERSION,
        "data": setup.data.fingerprint(),
        "data_config": as_dict(p.data),
        "train": as_dict(p.train),
        "attack": attack.params() if attack is not None else None,
        "seed": seed,
    }
    if p.train.model == TINY_BERT:  # its encoder's fixed initialisation is part of what the model is
        params["init_seed"] = TINY_BERT_INIT_SEED
    return params


def model_from_tensors(setup: TextSetup, tensors: dict):
    with torch.random.fork_rng(devices=[]):  # the throw-away head draws no numbers from the global stream
        model = build_text_model(setup.profile.train.model, setup.data.num_classes, pretrained=False)
    model.load_state_dict(tensors)
    return model.to(setup.device).eval()


def triggered_test(setup: TextSetup, attack):
    """(tokens, true labels) of the attack's triggered non-target test rows (evaluation side)."""
    texts, labels, _ = attack.triggered_test(setup.data.test_texts, setup.data.test_labels)
    return setup.by_length(texts, labels)


def evaluate(setup: TextSetup, model, attack=None) -> dict:
    if attack is None:
        return evaluate_text(model, setup.test, setup.test_labels)
    tokens, labels = triggered_test(setup, attack)
    return evaluate_text(model, setup.test, setup.test_labels, tokens, labels, attack.target)


def train_text_suspect(
    setup: TextSetup, attack: str | None, seed: int = 0, progress: bool = True, model_id: str = ""
) -> Suspect:
    """Fine-tune (or load from the cache) the profile's model on data poisoned by `attack` (None = clean); an
    attack name or a text Attack. `model_id` names the model in every table (the text zoo passes its own;
    empty: derived from the unit's key, so two models of one attack class at one seed stay apart)."""
    attack = make_attack(setup, attack, seed) if isinstance(attack, str) else attack
    name = attack.name if attack is not None else "clean"
    data = setup.data

    def compute():
        texts, labels, poisoned = data.train_texts, data.train_labels, torch.empty(0, dtype=torch.long)
        if attack is not None:
            texts, labels, poisoned = attack.poison(texts, labels, data.num_classes)
        start = time.perf_counter()
        model = build_text_model(setup.profile.train.model, data.num_classes, seed).to(setup.device)
        model = train_text_model(
            model, setup.tokens(texts), setup.labels(labels), setup.profile.train, seed, progress, desc=f"train {name}"
        )
        info = {
            "attack": attack.params() if attack else None,
            "seed": seed,
            "n_train": len(labels),
            "n_poisoned": len(poisoned),
            "train_seconds": time.perf_counter() - start,
            **evaluate(setup, model, attack),
        }
        return dict(model.state_dict()), info

    unit = cached_unit(
        "textmodel",
        model_params(setup, attack, seed),
        compute,
        setup.cache_dir,
        device=setup.device,
        label=f"{name} seed {seed}",
    )
    record = {
        **unit.info,
        "key": unit.key,
        "hardware": unit.record["hardware"],
        "threads": unit.record["threads"],
        "computed": unit.computed,
    }
    if attack is not None and not unit.computed:
        restore_attack(attack, unit.info["attack"])
    return Suspect(model_from_tensors(setup, unit.tensors), attack, seed, unit.key, record, model_id)


def restore_attack(attack, recorded: dict) -> None:
    """Set what poison() chose (e.g. BITE's trigger words) on an attack whose model came from the cache, so its
    triggered test rows are the ones the model was trained against."""
    for name, value in recorded.items():
        if name != "name" and hasattr(attack, name) and getattr(attack, name) is None and value is not None:
            setattr(attack, name, tuple(value) if isinstance(value, list) else value)


def expose_text(
    setup: TextSetup,
    suspect: Suspect,
    exposure: TextExposureConfig,
    restart: int = 0,
    monitor: bool = True,
    progress: bool = True,
):
    """Clean Unlearning of a text suspect (defender side) on the parameters `exposure.layers` names; with
    `monitor`, the evaluation side logs test CA / ASR per epoch on profile.monitor_size rows.
    Returns (exposed model, log) from a cached unit; the log's attrs as in pipeline.expose."""
    p = setup.profile

    def compute():
        watch = None
        if monitor:
            n = p.monitor_size
            small = TextSetup(p, _test_subset(setup.data, n), setup.device, setup.cache_dir, setup.data_dir)
            watch = lambda m: evaluate(small, m, suspect.attack)  # noqa: E731
        model = select_trainable(suspect.model, exposure.layers)
        try:
            exposed, log = clean_unlearn(
                model,
                setup.defense,
                setup.defense_labels,
                stop_rule(setup, exposure),
                setup.data.num_classes,
                probe_x=setup.probe,
                seed=restart,
                monitor=watch,
                progress=progress,
            )
        finally:
            select_trainable(suspect.model, "all")  # the suspect itself stays fully trainable
        return dict(exposed.state_dict()), {"rows": log.to_dict("records"), "attrs": log.attrs}

    params = {
        "suspect": suspect.key,
        "exposure": as_dict(exposure),
        "restart": restart,
        "monitor": p.monitor_size if monitor else 0,
    }
    unit = cached_unit(
        "textcul", params, compute, setup.cache_dir, device=setup.device, label=f"{exposure.name} on {suspect.model_id}"
    )
    log = pd.DataFrame(unit.info["rows"])
    log.attrs.update(unit.info["attrs"], seconds=unit.record["seconds"], computed=unit.computed, key=unit.key)
    return model_from_tensors(setup, unit.tensors), log


def stop_rule(setup: TextSetup, exposure: TextExposureConfig):
    """exposure.cul with stop_acc = the largest class share of the defense rows + exposure.stop_above_chance
    (defender-side: the defense labels are the defender's own)."""
    chance = torch.bincount(setup.data.defense_labels, minlength=setup.data.num_classes).max().item()
    stop = round(chance / len(setup.data.defense_labels) + exposure.stop_above_chance, 4)
    return dataclasses.replace(exposure.cul, stop_acc=min(stop, 0.99))


def _test_subset(data: TextData, n: int) -> TextData:
    """A seeded random subset of n test rows (the monitor's; never the first n)."""
    if not n or n >= len(data.test_labels):
        return data
    keep = torch.randperm(len(data.test_labels), generator=torch.Generator().manual_seed(0))[:n].sort().values
    return TextData(
        **{
            **data.__dict__,
            "test_texts": [data.test_texts[i] for i in keep.tolist()],
            "test_labels": data.test_labels[keep],
        }
    )


def context(setup: TextSetup) -> dict:
    p = setup.profile
    return {
        "profile": p.name,
        "dataset": setup.data.name,
        "architecture": p.train.model,
        "hardware": hardware_name(setup.device),
    }
