"""The model-detection zoo's drawn rows (role "drawn", notebook 05 on): more clean models, and backdoored ones
whose trigger, target and rate are drawn at random, so that a detector is not judged on default triggers at
target 0 alone. `zoo.zoo_table` puts these rows between the per-attack rows and the references."""

from __future__ import annotations

import random

from ..attacks import ATTACKS, make_attack
from ..config import Profile

DRAWN_SEED_OFFSET = 100  # the model-detection zoo's extra clean and drawn models use seeds 100, 101, ...
DATASET_SHAPES = {"cifar10": (10, 32), "synthetic": (10, 32)}  # (classes, image side) the draws are sized to


def drawn_rows(profile: Profile, make_row) -> list[dict]:
    """The model-detection zoo beyond the per-attack rows (role "drawn"): `extra_clean` clean models, then
    `drawn` backdoored ones cycling over zoo.drawn_attacks, each with its trigger, target and rate drawn by
    draw_attack. Model i's draw depends only on (draw_seed, i), so a larger zoo keeps the smaller one's models."""
    zoo = profile.zoo
    num_classes, side = dataset_shape(profile)
    for name, value in (("extra_clean", zoo.extra_clean), ("drawn", zoo.drawn)):
        if not (isinstance(value, int) and value >= 0):
            raise ValueError(f"zoo.{name} must be an int >= 0 (number of models); got {value!r}")
    if zoo.drawn and not zoo.drawn_attacks:
        raise ValueError("zoo.drawn > 0 needs at least one attack in zoo.drawn_attacks to draw from")
    unknown = set(zoo.drawn_attacks) - set(DRAWABLE)
    if unknown:
        raise ValueError(f"zoo.drawn_attacks: no draw rule for {sorted(unknown)}; drawable: {list(DRAWABLE)}")
    rows = [
        make_row(profile, f"clean-d{DRAWN_SEED_OFFSET + i}", "drawn", None, DRAWN_SEED_OFFSET + i)
        for i in range(zoo.extra_clean)
    ]
    for i in range(zoo.drawn):
        seed = DRAWN_SEED_OFFSET + zoo.extra_clean + i
        attack = draw_attack(
            zoo.drawn_attacks[i % len(zoo.drawn_attacks)],
            random.Random(zoo.draw_seed * 100_003 + i),
            seed,
            num_classes,
            side,
            zoo.rate_range,
        )
        rows.append(make_row(profile, f"{attack.name}-d{seed}", "drawn", attack, seed))
    return rows


def draw_attack(name: str, rng: random.Random, seed: int, num_classes: int, side: int, rate_range=(0.05, 0.15)):
    """An attack with its parameters drawn at random, so that a detector is not tuned to default triggers at
    target 0: the target uniformly over the classes; the rate uniformly from rate_range (a third of it for a
    clean-label attack, whose images all come from the target class); and per attack:
    BadNets: patch side 3-5 at a uniform position (side 3 is the official grid, others a seeded black/white
    pattern); Blend: alpha in [0.1, 0.25] and a seeded noise key; Trojan: square side 4-7 (its position stays the
    bottom-right corner) and a seeded colour pattern; SIG: amplitude 15-30 /255 and frequency 4-8. The attack's
    own seed (= the model seed) draws its pattern or key and its poisoned images."""
    low, high = _check_rate_range(rate_range)
    if ATTACKS[name].clean_label:
        low, high = low / 3, high / 3
    params = {"seed": seed, "target": rng.randrange(num_classes), "rate": round(rng.uniform(low, high), 4)}
    if name == "badnets":
        size = rng.randint(3, 5)
        params.update(size=size, position=(rng.randint(0, side - size), rng.randint(0, side - size)))
    elif name == "blend":
        params.update(alpha=round(rng.uniform(0.1, 0.25), 3))
    elif name == "trojan":
        params.update(size=rng.randint(4, 7))
    elif name == "sig":
        params.update(delta=round(rng.uniform(15, 30)) / 255, frequency=rng.randint(4, 8))
    else:
        raise ValueError(f"no draw rule for attack {name!r}; drawn zoos support {DRAWABLE}")
    return make_attack(name, **params)


DRAWABLE = ("badnets", "blend", "trojan", "sig")


def _check_rate_range(rate_range) -> tuple[float, float]:
    if not (isinstance(rate_range, (tuple, list)) and len(rate_range) == 2 and 0 < rate_range[0] <= rate_range[1] < 1):
        raise ValueError(
            f"zoo.rate_range must be (low, high) with 0 < low <= high < 1, e.g. (0.05, 0.15); got {rate_range!r}"
        )
    return float(rate_range[0]), float(rate_range[1])


def dataset_shape(profile: Profile) -> tuple[int, int]:
    if profile.data.dataset == "imagenette":  # Imagenette's ten classes (another ImageFolder: its own count)
        return 10, profile.data.resolution
    if profile.data.dataset not in DATASET_SHAPES:
        raise ValueError(
            f"the zoo does not know dataset {profile.data.dataset!r}; add its (classes, side) to "
            f"zoo.DATASET_SHAPES (known: {sorted(DATASET_SHAPES)})"
        )
    return DATASET_SHAPES[profile.data.dataset]
