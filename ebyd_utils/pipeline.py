"""The flow, evaluation side: profile -> data -> attack.poison -> train -> suspect -> expose, and nothing else.

    run = setup(profile, data_dir="data", device="auto", cache_dir="cache")   # a Run: what every step shares
    suspect = train_suspect(run, "badnets", seed=0)                          # a cached unit
    exposed, log = expose(run, suspect)                                      # Clean Unlearning, a cached unit

This is the one place that holds both sides of the defender's wall: it trains suspects with attacks, hands the
defender (expose/, defenses/) only what a defender has, and evaluates with the attack afterwards. Every unit
is a cached unit (`core/units.cached_unit`), a pure function of its parameters: a model under a key of (data,
training recipe, attack, seed), an exposure under (model key, CUL settings, restart, monitor size). Which models
exist is the zoo's business (`zoo/`); what each paper section does with them, the experiments' (`experiments/`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import pandas as pd
import torch

from .attacks import Attack, make_attack
from .config import Profile, as_dict
from .core.store import hardware_name
from .core.units import cached_unit
from .data import ImageData, load_data
from .expose import clean_unlearn
from .models import build_model
from .train import evaluate, evaluator, pick_device, train_model

DEFAULT_MONITOR_SIZE = 2000  # test images of the CUL monitor (the zoo, notebooks 02-05 and a pre-built zoo share it)
MODEL_VERSION = 2  # bump when training code changes what a key's model is (2: seeded initialisation)


@dataclass
class Run:
    """What every step of one run shares, so that a flow function takes it instead of six threaded arguments.

    profile: the settings (`config.get_profile`); data: its dataset, resident on the device; cache_dir: where
    units are stored; monitor_size: test images on which the evaluation side logs CA / ASR during CUL (0 = none;
    the zoo, notebooks 02-05 and a pre-built zoo share DEFAULT_MONITOR_SIZE, so they share its units);
    progress: whether training and unlearning show bars; data_dir: where the data came from (Ray workers load
    it again from there)."""

    profile: Profile
    data: ImageData
    cache_dir: str = "cache"
    monitor_size: int = DEFAULT_MONITOR_SIZE
    progress: bool = True
    data_dir: str | None = None

    def __post_init__(self):
        if not (isinstance(self.monitor_size, int) and self.monitor_size >= 0):
            raise ValueError(
                f"monitor_size must be an int >= 0 (test images; 0 = no monitor); got {self.monitor_size!r}"
            )
        self.cache_dir = str(self.cache_dir)

    @property
    def device(self) -> torch.device:
        return self.data.train_x.device

    def replace(self, **changes) -> "Run":
        """The same run with some fields changed (e.g. another profile over the same data)."""
        return dataclasses.replace(self, **changes)


@dataclass
class Suspect:
    model: torch.nn.Module
    attack: Attack | None  # evaluation side only: never handed to expose/ or defenses/
    seed: int
    key: str  # the model unit's key: every parameter that made the model
    record: dict  # CA/ASR/RA, poisoned count, training seconds, hardware, threads (the unit's record)
    model_id: str = ""  # the model's one identity in every table: the zoo row's id, else derived from the
    # key (label and seed alone do not identify a model: two patches at one seed)

    def __post_init__(self):
        if not self.model_id:
            self.model_id = f"{self.label}-s{self.seed}-{self.key[:8]}"

    @property
    def label(self) -> str:
        return self.attack.label if self.attack is not None else "clean"


def setup(
    profile: Profile,
    data_dir=None,
    device="auto",
    cache_dir="cache",
    monitor_size: int = DEFAULT_MONITOR_SIZE,
    progress: bool = True,
) -> Run:
    """Load the profile's dataset onto the chosen device: the Run every step of the flow takes.

    Args:
        profile: `config.get_profile(name)`.
        data_dir: where CIFAR-10 (or an ImageFolder) is; ignored by generated data (`smoke`).
        device: "auto", "cpu" or "cuda[:N]".
        cache_dir: where units (models, exposures, defenses) are stored and reused.
        monitor_size: test images the evaluation side logs CA / ASR on during CUL (0: none).
        progress: show training and unlearning bars.
    Returns:
        a `Run`. Raises ValueError on an unknown device, a missing data folder or a bad monitor size."""
    data = load_data(profile.data, data_dir=data_dir, cache_dir=cache_dir, device=pick_device(device))
    return Run(profile, data, str(cache_dir), monitor_size, progress, None if data_dir is None else str(data_dir))


def data_key(cfg) -> dict:
    """The data settings in a model's key; fields added later are left out at their "off" value, so that models
    trained before they existed keep their keys."""
    out = as_dict(cfg)
    if not out.get("resolution"):
        out.pop("resolution", None)
    return out


def model_params(profile: Profile, data: ImageData, attack: Attack | None, seed: int) -> dict:
    """Every parameter that decides a trained model: its unit's key."""
    return {
        "version": MODEL_VERSION,
        "data": data.fingerprint(),
        "data_config": data_key(profile.data),
        "train": as_dict(profile.train),
        "attack": attack.params() if attack is not None else None,
        "seed": seed,
    }


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
    model.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    return model.to(data.train_x.device, memory_format=torch.channels_last).eval()


COMPONENT_VERSION = 1  # bump when an attack's trained component (surrogate, generator, encoder) changes


def prepare_attack(run: Run, attack: Attack) -> Attack:
    """Load (or train and cache) the attack's trained component, if it has one: a cached unit of kind "attack"
    under (attack parameters, the data it was trained on), trained on the attacker's clean training images.
    Returns the attack, ready to poison and trigger; the component's training seconds are in
    attack.component_record."""
    if not attack.needs_fit or attack.fitted:
        return attack
    data = run.data

    def compute():
        tensors = attack.fit(data.train_x, data.train_y, data.num_classes, progress=run.progress)
        return tensors, {"attack": attack.params()}

    params = {"version": COMPONENT_VERSION, "attack": attack.params(), "data": data.fingerprint()}
    unit = cached_unit("attack", params, compute, run.cache_dir, device=run.device, label=f"{attack.name} component")
    attack.load_component({k: v.to(run.device) for k, v in unit.tensors.items()})
    attack.component_record = {"key": unit.key, "seconds": unit.record["seconds"], "computed": unit.computed}
    return attack


def train_suspect(
    run: Run, attack: Attack | str | None = None, seed: int = 0, attack_params: dict | None = None, model_id: str = ""
) -> Suspect:
    """Train (or load from cache) a model on data poisoned by `attack` (None = clean model): a cached unit.

    `attack` is an Attack or a registry name; a name is built with `attack_params`, its trigger and poison
    choice seeded by the model seed unless attack_params says otherwise. `model_id` names the model in every
    table (the zoo passes its row's id; empty: derived from the unit's key).

    Returns:
        a `Suspect`: the trained model (eval mode), its attack (evaluation side only), seed, unit key, record
        (CA, ASR, RA, poisoned count, seconds, hardware) and model_id."""
    profile, data = run.profile, run.data
    if isinstance(attack, str):
        attack = make_attack(attack, **{"seed": seed, **(attack_params or {})})
    name = attack.name if attack is not None else "clean"
    if attack is not None:
        prepare_attack(run, attack)

    def compute():
        x, y, poisoned = data.train_x, data.train_y, torch.empty(0, dtype=torch.long)
        if attack is not None:
            x, y, poisoned = attack.poison(data.train_x, data.train_y, data.num_classes)
        start = time.perf_counter()
        model = train_model(
            new_model(profile, data, seed).to(run.device), x, y, profile.train, seed, run.progress, desc=f"train {name}"
        )
        info = {
            "attack": attack.params() if attack else None,
            "seed": seed,
            "n_train": len(y),
            "n_poisoned": len(poisoned),
            "train_seconds": time.perf_counter() - start,
            **evaluate(model, data, attack),
        }
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        if attack is not None:
            tensors.update(attack.trigger_tensors(*data.train_x.shape[-2:]))
            tensors["poisoned_indices"] = poisoned
        return tensors, info

    unit = cached_unit(
        "model",
        model_params(profile, data, attack, seed),
        compute,
        run.cache_dir,
        device=run.device,
        label=model_id or f"{name} seed {seed}",
    )
    record = {
        **unit.info,
        "key": unit.key,
        "hardware": unit.record["hardware"],
        "threads": unit.record["threads"],
        "computed": unit.computed,
    }
    return Suspect(model_from_tensors(profile, data, unit.tensors, "model."), attack, seed, unit.key, record, model_id)


def expose(run: Run, suspect: Suspect, restart: int = 0, monitor_size: int | None = None):
    """Clean Unlearning of a suspect (defender side), with test CA/ASR logged per epoch by the evaluation side
    on `monitor_size` test images (None: the run's; 0 = no monitor). `restart` seeds the CUL run. The monitor
    only watches: the exposed weights and the stop epoch are the same without it (tested).

    Returns (exposed model, log): a cached unit under (model key, CUL settings, restart, monitor size); the
    log's attrs hold stop_epoch, collapsed, seconds, computed and the unit's key."""
    profile, data = run.profile, run.data
    monitor_size = run.monitor_size if monitor_size is None else monitor_size

    def compute():
        monitor_data = subset_test(data, monitor_size)
        monitor = evaluator(monitor_data, suspect.attack) if monitor_size else None
        exposed, log = clean_unlearn(
            suspect.model,
            data.defense_x,
            data.defense_y,
            profile.cul,
            data.num_classes,
            probe_x=data.probe_x,
            seed=restart,
            progress=run.progress,
            monitor=monitor,
        )
        return exposed.state_dict(), {"rows": log.to_dict("records"), "attrs": log.attrs}

    params = cul_params(profile, suspect.key, restart, monitor_size)
    unit = cached_unit(
        "cul", params, compute, run.cache_dir, device=run.device, label=f"{suspect.model_id} restart {restart}"
    )
    log = pd.DataFrame(unit.info["rows"])
    log.attrs.update(unit.info["attrs"], seconds=unit.record["seconds"], computed=unit.computed, key=unit.key)
    return model_from_tensors(profile, data, unit.tensors), log


def cul_params(profile: Profile, suspect_key: str, restart: int, monitor_size: int) -> dict:
    """Every parameter that decides a CUL run: its unit's key (the monitor size is in it because the log holds
    the monitor's readings, though the exposed weights do not depend on it)."""
    return {"suspect": suspect_key, "cul": as_dict(profile.cul), "restart": restart, "monitor_size": monitor_size}


def expose_restarts(run: Run, suspect: Suspect) -> list:
    """The CUL logs of profile.detection.restarts runs; the first carries the evaluation monitor (and is the
    run notebook 02 shows), the others run defender-side only."""
    return [
        expose(run, suspect, restart=r, monitor_size=None if r == 0 else 0)[1]
        for r in range(run.profile.detection.restarts)
    ]


def subset_test(data: ImageData, n: int) -> ImageData:
    """A seeded random subset of n test images (test files are sorted by class: never take the first n)."""
    if not n or n >= len(data.test_y):
        return data
    keep = torch.randperm(len(data.test_y), generator=torch.Generator().manual_seed(0))[:n].to(data.test_y.device)
    return dataclasses.replace(data, test_x=data.test_x[keep], test_y=data.test_y[keep])


def context(run: Run) -> dict:
    """Columns every result row of this run carries (seed is added per row)."""
    return {"profile": run.profile.name, "dataset": run.data.name, "hardware": hardware_name(run.device)}
