"""The sections of a profile: one frozen dataclass per concern (data, training, CUL, detection, recovery, zoo,
model detection, removal), every knob with its unit in a comment; and the helpers that override and flatten them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# The official EBYD code's ten CIFAR triggers (the best guess at the paper's set), then the anchors' others.
PAPER_ATTACKS = ("badnets", "blend", "trojan", "sig", "onepixel", "wanet", "lc", "smooth", "iad", "nashville")
ANCHOR_ATTACKS = ("ssba", "bpp", "adap_blend", "adap_patch")
IMAGE_ATTACKS = PAPER_ATTACKS + ANCHOR_ATTACKS


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "cifar10"  # "cifar10", "imagenette" (an ImageNet subset, any ImageFolder by DATA_DIR) or
    # "synthetic" (generated, never labelled CIFAR)
    resolution: int = 0  # image side for "imagenette" (pixels; resized, centre-cropped); 0 = native
    defense_size: int = 500  # labelled clean images the defender unlearns on (paper default: 500)
    probe_size: int = 1000  # unlabelled clean images the defender reads class shares on
    train_subset: int = 0  # images kept from the training split (0 = all)
    test_subset: int = 0  # images kept from the test split (0 = all)
    split_seed: int = 0  # seeds which training images become defense / probe images


@dataclass(frozen=True)
class TrainConfig:
    model: str = "fastcnn"  # "fastcnn" (airbench-style), "resnet18" (CIFAR stem) or "resnet18_imagenet"
    widths: tuple = (64, 128, 256)  # fastcnn block widths (channels)
    stem_width: int = 24  # fastcnn whitening channels (airbench: 24)
    activation: str = "gelu"  # fastcnn activation, "gelu" (airbench) or "relu"
    epochs: int = 10  # passes over the training set
    batch_size: int = 500  # images per step
    lr: float = 0.2  # peak SGD learning rate (per step, after warm-up)
    momentum: float = 0.9  # SGD Nesterov momentum
    weight_decay: float = 5e-4  # L2 on all weights
    schedule: str = "onecycle"  # "onecycle" (linear warm-up then linear decay) or "multistep" (official)
    warmup: float = 0.2  # share of steps spent warming up (onecycle)
    milestones: tuple = ()  # epochs at which lr drops x0.1 (multistep)
    label_smoothing: float = 0.0  # cross-entropy label smoothing (0 keeps the exposure sharp)
    ema_decay: float = 0.0  # weight averaging decay per step (0 = off)
    crop_pad: int = 2  # random-crop padding (pixels); 0 disables cropping
    flip: bool = True  # random horizontal flip
    bf16: bool = True  # bf16 autocast where the device supports it


@dataclass(frozen=True)
class CULConfig:
    """Clean Unlearning: gradient ascent on cross-entropy over the defense set."""

    optimizer: str = "adam"  # "adam" (official) or "sgd"
    lr: float = 1e-5  # learning rate
    weight_decay: float = 5e-4  # as in the official code
    epochs: int = 20  # maximum passes over the defense set
    batch_size: int = 128  # defense images per step
    stop_acc: float = 0.2  # stop at the first epoch whose defense-set accuracy is <= this (defender-side)
    grad_clip: float = 20.0  # max gradient norm, applied after backward() (0 = off)
    bn_eval: bool = True  # BatchNorm on running statistics during CUL (what the official code ends up
    # doing); False = batch statistics, which exposes far better on the small CNN
    augment: bool = True  # random crop + flip on defense images (as the official loader)


@dataclass(frozen=True)
class DetectionConfig:
    n_reference: int = 2  # clean reference models the defender trains (same architecture and recipe)
    restarts: int = 3  # CUL runs per model (seeds 0..restarts-1); a label must win in every one
    threshold: float = 0.10  # minimum excess share for a label to be flagged
    zoo_seeds: tuple = ()  # the zoo seeds whose suspects notebook 03 reads (empty: every seed)
    attacks: tuple = ()  # the zoo's attacks notebook 03 reads (labels; empty: all); clean controls always


@dataclass(frozen=True)
class RecoveryConfig:
    """Trigger recovery (notebook 04): which methods run and their step budgets (the rest: each method's
    defaults, `defenses/neural_cleanse.py` and `defenses/bti_dbf.py`)."""

    methods: tuple = ("nc", "bti")  # "nc" = Neural Cleanse, "bti" = BTI-DBF
    nc_epochs: int = 50  # NC's maximum epochs a class, 4 batches of 32 images each (the original: 1000)
    bti_generator_steps: int = 300  # BTI-DBF's generator steps of 64 images (the original: 600 of 128)
    seed: int = 0  # seeds the inversions (initial mask and pattern, batch order)
    zoo_seeds: tuple = ()  # the zoo seeds whose models are inverted (empty: every seed of the zoo)
    attacks: tuple = ()  # the zoo's attacks inverted (labels, e.g. "badnets-all2all"; empty: all)


@dataclass(frozen=True)
class ZooConfig:
    """Which models a profile trains. `ebyd_utils.zoo.zoo_table` turns this into the zoo as data: one row per
    model (architecture, attack and its parameters, target, rate, seed), which every notebook asks models by."""

    attacks: tuple = ("badnets", "blend", "trojan", "sig")  # one backdoored model per attack and seed
    seeds: tuple = (0, 1)  # model seeds (initial weights, data order); each also seeds its attack's
    # random choices (trigger draw, poisoned images), so every seed is a fresh draw
    one_seed_attacks: tuple = ()  # attacks with one model, at the first seed only (cheaper breadth)
    all_to_all: tuple = ()  # dirty-label attacks also trained all-to-all (y -> y + 1 mod K), first seed
    clean: bool = True  # one clean control per seed
    target: int = 0  # all-to-one target label of every attack
    rate: float = 0.0  # poison rate of every attack (share of the training set; 0 = each attack's own)
    attack_params: dict = field(default_factory=dict)  # per-attack settings beyond target/rate/seed, e.g.
    # {"iad": {"steps": 200}}: a trained component's budget
    # the model-detection zoo (notebook 05): models beyond the per-attack rows above, role "drawn"
    extra_clean: int = 0  # more clean models (seeds DRAWN_SEED_OFFSET, ...)
    drawn: int = 0  # backdoored models with trigger, target and rate drawn at random, cycling
    # over `drawn_attacks` (zoo.draws.draw_attack: what is drawn, from which range)
    drawn_attacks: tuple = ("badnets", "blend", "trojan", "sig")  # the attacks with a draw rule
    draw_seed: int = 0  # seeds the draws (the models' own seeds follow the clean ones)
    rate_range: tuple = (0.05, 0.15)  # dirty-label poison rates are drawn uniformly from this range; clean-label
    # ones (SIG) from a third of it (all their images come from one class)


@dataclass(frozen=True)
class ModelDetectionConfig:
    """Model detection (notebook 05): which detectors score every model of the zoo, on the suspect and on its
    exposed model, and how the scores are judged (the rest: each detector's defaults, `defenses/`)."""

    detectors: tuple = ("exposure", "unlearning", "nc", "mmbd")
    zoo_seeds: tuple = ()  # seeds of the per-attack rows scored (empty: every seed); drawn rows: all
    attacks: tuple = ()  # the zoo's attacks scored (labels; empty: all); clean controls always
    mmbd_steps: int = 100  # MM-BD's max ascent steps per start (the original: 300 at a 10x smaller step)
    mmbd_starts: int = 10  # MM-BD's random starts per class (the original: 30)
    bootstrap: int = 2000  # resamples of the models for the ROC AUC's 95% interval
    fpr: float = 0.05  # the false-positive rate at which the TPR is read
    seed: int = 0  # seeds MM-BD's starts and the bootstrap


@dataclass(frozen=True)
class RemovalConfig:
    """Backdoor removal (notebook 06): which methods repair the suspects, and the budgets the profile sets (the
    rest: each method's defaults, `defenses/fine_tuning.py`, `fine_pruning.py`, `anp.py`, `rnp.py`,
    `nc_unlearning.py`)."""

    methods: tuple = ("ft", "fp", "anp", "rnp", "nc_unlearning")
    finetune_epochs: int = 20  # fine-tuning epochs over the defender's 500 images (FT, FP, NC unlearning)
    anp_iterations: int = 200  # ANP's mask updates (the original: 2,000)
    seed: int = 0  # seeds every method's batches and masks
    zoo_seeds: tuple = ()  # the zoo seeds whose suspects are repaired (empty: every seed)
    attacks: tuple = ()  # the zoo's attacks repaired (labels; empty: all); clean controls always


@dataclass(frozen=True)
class Profile:
    name: str
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cul: CULConfig = field(default_factory=CULConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    zoo: ZooConfig = field(default_factory=ZooConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    model_detection: ModelDetectionConfig = field(default_factory=ModelDetectionConfig)
    removal: RemovalConfig = field(default_factory=RemovalConfig)


def _override(obj, changes: dict):
    allowed = {f.name for f in dataclasses.fields(obj)}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {type(obj).__name__}; allowed: {sorted(allowed)}")
    return dataclasses.replace(obj, **changes)


def override(profile, overrides: dict):
    """A profile (any dataclass of dataclasses) with fields replaced; a dict replaces fields of a section."""
    changes = {}
    for key, value in overrides.items():
        current = getattr(profile, key, None)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = _override(current, value)
        else:
            changes[key] = value
    return _override(profile, changes) if changes else profile


def as_dict(obj) -> dict:
    """A dataclass as a plain dict (tuples kept), for cache keys and CSV rows."""
    return dataclasses.asdict(obj)
