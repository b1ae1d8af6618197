"""Profiles as data: one frozen dataclass per concern, one literal structure per profile.

Every knob has its unit in a comment. Override any field by keyword::

    cfg = get_profile("quick", train=dict(epochs=12), cul=dict(lr=1e-3))

`smoke` runs in seconds on generated data (tests), `quick` on real CIFAR-10 on one CPU,
`paper` reproduces the official code's recipe (ResNet-18, 60 epochs) on one GPU.
"""

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


# at smoke, notebooks 04-06 run on these of the zoo's attacks only (keeps the test suite within its budget): a
# patch, a blend, a warp and an all-to-all model (smoke tests the flow; quick runs every attack through 04-06)
SMOKE_SECTION_ATTACKS = ("badnets", "blend", "wanet", "badnets-all2all")

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        data=DataConfig(dataset="synthetic", defense_size=200, probe_size=300, train_subset=0),
        # measured over 6 seeds on the generated data: BadNets learned in 5 (ASR >= 0.99), exposed and named in
        # all 6 (excess 0.48-0.74); 6 clean models scored 0.07-0.24, hence the threshold 0.35
        train=TrainConfig(
            model="fastcnn",
            widths=(32, 64, 128),
            epochs=10,
            batch_size=100,
            lr=0.3,
            momentum=0.85,
            crop_pad=0,
            flip=False,
        ),
        cul=CULConfig(optimizer="adam", lr=3e-4, epochs=30, batch_size=100, stop_acc=0.15, bn_eval=False),
        detection=DetectionConfig(n_reference=2, threshold=0.35, restarts=2),
        # the four first attacks at 2 seeds, every other image attack and BadNets all-to-all at seed 0 (notebooks
        # 01-03 show them all; tests/test_attack_zoo.py states each one's ASR); the trained components at budgets
        # of seconds. Model detection scores the seed-0 rows of SMOKE_SECTION_ATTACKS and 2 more clean + 2 drawn
        zoo=ZooConfig(
            seeds=(0, 1),
            one_seed_attacks=IMAGE_ATTACKS[4:],
            all_to_all=("badnets",),
            extra_clean=2,
            drawn=2,
            attack_params={
                "lc": {"fit_images": 0, "surrogate_epochs": 2},
                "iad": {"fit_images": 0, "mask_epochs": 1, "epochs": 2},
                "ssba": {"fit_images": 0, "epochs": 3},
            },
        ),
        # a test of the flow, not of the methods (tests/test_trigger_recovery.py measures those at their defaults)
        recovery=RecoveryConfig(nc_epochs=10, bti_generator_steps=30, zoo_seeds=(0,), attacks=SMOKE_SECTION_ATTACKS),
        model_detection=ModelDetectionConfig(
            zoo_seeds=(0,), mmbd_steps=30, mmbd_starts=4, bootstrap=500, attacks=SMOKE_SECTION_ATTACKS
        ),
        removal=RemovalConfig(finetune_epochs=5, anp_iterations=50, zoo_seeds=(0,), attacks=SMOKE_SECTION_ATTACKS),
    ),
    "quick": Profile(
        name="quick",
        data=DataConfig(dataset="cifar10"),
        # ReLU and a 16-channel stem: ~30% faster steps than airbench's GELU/24 and a stronger exposure
        # (measured on 2 clean + 2 BadNets + 2 Blend models: excess 0.46-0.55 vs 0.21-0.41, clean <= 0.03)
        train=TrainConfig(
            model="fastcnn",
            widths=(32, 64, 128),
            stem_width=16,
            activation="relu",
            epochs=4,
            batch_size=500,
            lr=1.0,
            momentum=0.85,
        ),
        # BN on batch statistics and Adam 3e-4: chosen by benchmarks/exposure_fidelity.py (the official
        # running-statistics mode collapsed clean models onto one class; see README)
        cul=CULConfig(optimizer="adam", lr=3e-4, epochs=30, batch_size=128, stop_acc=0.2, bn_eval=False),
        detection=DetectionConfig(n_reference=2, threshold=0.12, restarts=2),
        # every image attack at one seed, BadNets also all-to-all; model detection adds 4 clean + 2 drawn models:
        # 5 clean, 17 backdoored. One seed keeps `make figures` within ~2 h on 2 cores (README, "Budget")
        zoo=ZooConfig(attacks=IMAGE_ATTACKS, seeds=(0,), all_to_all=("badnets",), extra_clean=4, drawn=2),
        # NC only: BTI-DBF did not recover triggers at a CPU budget (named the target in 0.5 of runs with and
        # without exposure; README) and would add ~13 min for 16 models; the paper profile runs both
        recovery=RecoveryConfig(methods=("nc",), nc_epochs=50, bti_generator_steps=200),
    ),
    "paper": Profile(
        name="paper",
        data=DataConfig(dataset="cifar10"),
        train=TrainConfig(
            model="resnet18",
            epochs=60,
            batch_size=128,
            lr=0.1,
            schedule="multistep",
            milestones=(30, 45),
            crop_pad=4,
            weight_decay=5e-4,
        ),
        cul=CULConfig(optimizer="adam", lr=1e-5, epochs=20, batch_size=128, stop_acc=0.2),
        detection=DetectionConfig(n_reference=2, threshold=0.10),
        # 3 seeds x (4 attacks + clean) + 2 references = 17 models of ~4 min each on one H200 (measured: 245 s
        # for BadNets ResNet-18, 60 epochs); 3 trainings share one GPU at no loss (results/gpu/gpu_packing.csv)
        # model detection adds 9 clean + 8 drawn: 12 clean, 20 backdoored (~34 models, ~50 min at 3 a GPU)
        # the other image attacks and BadNets all-to-all at seed 0: 11 more models, ~45 min at 3 a GPU
        zoo=ZooConfig(
            seeds=(0, 1, 2), one_seed_attacks=IMAGE_ATTACKS[4:], all_to_all=("badnets",), extra_clean=9, drawn=8
        ),
    ),
    # the paper's zoo with a short GPU recipe for ResNet-18, so that notebooks 01-03 fit one 15-minute GPU slot: the
    # same model, data, CUL and zoo as `paper`, trained by the same loop and step (uint8 data resident on the GPU,
    # batch augmentation on the GPU, bf16, channels_last), at batch 512 with a one-cycle schedule of 16 epochs
    # (Nesterov SGD, the peak lr scaled from the official 0.1 at 128 by the batch, label smoothing off, as every
    # profile, to keep the exposure sharp). NOT measured yet: no GPU was lent to the session that wrote it; its
    # CA target is the official recipe's (89.9% on the JPEG copy, BadNets ASR >= 99%), its time target <= 60 s a
    # model on one H200 (the official recipe: 245 s).
    "paper-fast": Profile(
        name="paper-fast",
        data=DataConfig(dataset="cifar10"),
        train=TrainConfig(
            model="resnet18", epochs=16, batch_size=512, lr=0.4, warmup=0.25, crop_pad=4, weight_decay=5e-4
        ),
        cul=CULConfig(optimizer="adam", lr=1e-5, epochs=20, batch_size=128, stop_acc=0.2),
        detection=DetectionConfig(n_reference=2, threshold=0.10),
        zoo=ZooConfig(
            seeds=(0, 1, 2), one_seed_attacks=IMAGE_ATTACKS[4:], all_to_all=("badnets",), extra_clean=9, drawn=8
        ),
    ),
    # the ImageNet subset (Imagenette by default, any ImageFolder by DATA_DIR) on one GPU: ResNet-18 with its
    # ImageNet stem at 224 px, the CIFAR recipe's schedule; triggers sized to the resolution (BadNets and
    # Trojan: the CIFAR patch scaled by 7, 3 -> 21 and 6 -> 42 px). Not measured yet (no GPU run).
    "paper-imagenette": Profile(
        name="paper-imagenette",
        data=DataConfig(dataset="imagenette", resolution=224),
        train=TrainConfig(
            model="resnet18_imagenet",
            epochs=60,
            batch_size=128,
            lr=0.1,
            schedule="multistep",
            milestones=(30, 45),
            crop_pad=28,
            weight_decay=5e-4,
        ),
        cul=CULConfig(optimizer="adam", lr=1e-5, epochs=20, batch_size=128, stop_acc=0.2),
        detection=DetectionConfig(n_reference=2, threshold=0.10),
        zoo=ZooConfig(
            attacks=IMAGE_ATTACKS,
            seeds=(0,),
            all_to_all=("badnets",),
            extra_clean=4,
            drawn=0,
            attack_params={"badnets": {"size": 21}, "trojan": {"size": 42}},
        ),
    ),
}


def _override(obj, changes: dict):
    allowed = {f.name for f in dataclasses.fields(obj)}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {type(obj).__name__}; allowed: {sorted(allowed)}")
    return dataclasses.replace(obj, **changes)


def get_profile(name: str, **overrides) -> Profile:
    """Return profile `name`, with sections overridden by dicts (data=, train=, cul=, detection=, zoo=,
    recovery=) or fields."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return override(PROFILES[name], overrides)


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
