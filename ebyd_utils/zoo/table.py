"""The zoo's table: which models a profile trains, one row per model (see the package docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..attacks import ATTACKS, make_attack
from ..config import Profile
from ..core.store import write_csv
from .draws import dataset_shape, drawn_rows

REFERENCE_SEED_OFFSET = 1000  # the defender's clean reference models use seeds 1000, 1001, ... (never a zoo seed)
TABLE_COLUMNS = ["model_id", "role", "architecture", "attack", "target", "rate", "seed", "attack_params"]


# ------------------------------------------------------------------------------------------- the table
def zoo_table(profile: Profile) -> pd.DataFrame:
    """The profile's zoo, one row per model: for every seed a clean control (if zoo.clean) and one model per
    attack; at the first seed also the one-seed attacks and the all-to-all variants; then the drawn rows
    (zoo/draws.py) and the defender's clean references."""
    zoo = profile.zoo
    _check_zoo(profile)
    rows = []
    for k, seed in enumerate(zoo.seeds):
        if zoo.clean:
            rows.append(_row(profile, f"clean-s{seed}", "suspect", None, seed))
        names = list(zoo.attacks) + (list(zoo.one_seed_attacks) if k == 0 else [])
        for name in names:
            attack = make_attack(name, **_attack_settings(zoo, name, seed))
            rows.append(_row(profile, f"{name}-s{seed}", "suspect", attack, seed))
        for name in zoo.all_to_all if k == 0 else ():
            attack = make_attack(name, **_attack_settings(zoo, name, seed), all_to_all=True)
            rows.append(_row(profile, f"{name}-all2all-s{seed}", "suspect", attack, seed))
    rows += drawn_rows(profile, _row)
    for i in range(profile.detection.n_reference):
        rows.append(_row(profile, f"reference-{i}", "reference", None, REFERENCE_SEED_OFFSET + i))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _attack_settings(zoo, name: str, seed: int) -> dict:
    """target, rate (when the zoo sets one) and the zoo's per-attack settings; the seed is the model's."""
    return {
        "seed": seed,
        "target": zoo.target,
        **({"rate": zoo.rate} if zoo.rate else {}),
        **zoo.attack_params.get(name, {}),
    }


def _check_zoo(profile: Profile) -> None:
    zoo = profile.zoo
    for field in ("attacks", "one_seed_attacks", "all_to_all"):
        unknown = set(getattr(zoo, field)) - set(ATTACKS)
        if unknown:
            raise ValueError(f"zoo.{field} names unknown attack(s) {sorted(unknown)}; choose from {sorted(ATTACKS)}")
    both = sorted(set(zoo.attacks) & set(zoo.one_seed_attacks))
    if both:
        raise ValueError(
            f"{both} are in both zoo.attacks (every seed) and zoo.one_seed_attacks (first seed); list each attack once"
        )
    clean_label = sorted(n for n in zoo.all_to_all if ATTACKS[n].clean_label)
    if clean_label:
        raise ValueError(
            f"zoo.all_to_all: {clean_label} keep their labels (clean-label), so they have no "
            f"all-to-all variant; list dirty-label attacks only"
        )
    unknown = set(zoo.attack_params) - set(ATTACKS)
    if unknown:
        raise ValueError(f"zoo.attack_params names unknown attack(s) {sorted(unknown)}; choose from {sorted(ATTACKS)}")
    if not zoo.seeds and (zoo.one_seed_attacks or zoo.all_to_all):
        raise ValueError("zoo.one_seed_attacks and zoo.all_to_all use the first of zoo.seeds; give at least one seed")
    if not 0 <= zoo.rate < 1:
        raise ValueError(f"zoo.rate must be in [0, 1) (0 = each attack's default rate); got {zoo.rate}")
    num_classes, _ = dataset_shape(profile)
    if not (isinstance(zoo.target, int) and 0 <= zoo.target < num_classes):
        raise ValueError(
            f"zoo.target must be a class index in [0, {num_classes - 1}] for {profile.data.dataset}; got {zoo.target!r}"
        )


def _row(profile, model_id, role, attack, seed) -> dict:
    params = attack.params() if attack is not None else None
    return {
        "model_id": model_id,
        "role": role,
        "architecture": profile.train.model,
        "attack": attack.label if attack else "clean",
        "target": attack.single_target if attack else None,
        "rate": params["rate"] if params else None,
        "seed": seed,
        "attack_params": json.dumps(params, sort_keys=True) if params else "",
    }


def section_rows(table: pd.DataFrame, seeds=(), attacks=()) -> pd.DataFrame:
    """The per-attack suspects a section runs on: those of these seeds and these attack labels (e.g. "badnets",
    "badnets-all2all"); empty = all. The clean controls of the chosen seeds always stay."""
    unknown = set(attacks) - set(table["attack"])
    if unknown:
        raise ValueError(f"attacks {sorted(unknown)} are not in the zoo; it has {sorted(set(table['attack']))}")
    rows = table[table["role"] == "suspect"]
    rows = rows[rows["seed"].isin(seeds)] if seeds else rows
    return rows[rows["attack"].isin(("clean", *attacks))] if attacks else rows


def attack_of(row):
    """The attack a zoo row names (evaluation side), rebuilt from its parameters; None for a clean model."""
    if row["attack"] == "clean":
        return None
    params = json.loads(row["attack_params"])
    return make_attack(params.pop("attack"), **params)


def write_table(table: pd.DataFrame, profile: Profile, results_dir) -> str:
    """results/zoo_<profile>.csv: the zoo a reader sees."""
    return str(write_csv(table.assign(profile=profile.name), Path(results_dir) / f"zoo_{profile.name}.csv"))
