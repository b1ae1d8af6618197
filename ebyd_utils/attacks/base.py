"""The one attack interface.

An attack is a value: its parameters and its seed. It

- ``poison(x, y, num_classes)`` -> (poisoned x, poisoned y, poisoned indices): exactly ``round(rate * N)``
  training images get the trigger (dirty-label attacks draw them from non-target images and relabel them to
  the target; clean-label attacks draw them from target-class images and keep their labels). With
  ``all_to_all=True`` (dirty-label attacks only) any image may be drawn and label y becomes (y + 1) mod K, the
  official EBYD code's rule; ``target`` is then unused;
- ``apply(x)`` -> triggered uint8 images (test time);
- ``trigger_tensors(h, w)`` and ``params()``: what is saved with the model, so a checkpoint carries its trigger.

Attacks with a trained component (a surrogate, a generator, an encoder) set ``needs_fit = True`` and define
``fit(x, y, num_classes, progress) -> tensors`` (train it on the attacker's clean training set, seeded by the
attack's seed) and ``load_component(tensors)``; `pipeline.prepare_attack` makes the component a cached unit and
loads it before the attack is used. An attack that needs its component and has none raises a ValueError.

Triggers are stamped as ``x' = (1 - mask) * x + mask * pattern`` in [0, 1] pixel space, then rounded back to
uint8, unless an attack overrides `stamp`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import torch

from ..data import check_images


def check_rate_and_target(rate: float, target: int) -> None:
    if not (isinstance(rate, (int, float)) and 0 < rate < 1):
        raise ValueError(f"poison rate must be a number in (0, 1), e.g. 0.1 for 10%; got {rate!r}")
    if not isinstance(target, int) or isinstance(target, bool) or target < 0:
        raise ValueError(f"target must be a class index >= 0; got {target!r}")


def as_unit_float(t, what: str) -> torch.Tensor:
    """A user-given pattern/image as float in [0, 1]: uint8 is divided by 255, floats must lie in [0, 1]."""
    t = torch.as_tensor(t)
    if t.dtype == torch.uint8:
        return t.float() / 255
    t = t.float()
    if t.numel() and (t.min() < 0 or t.max() > 1):
        raise ValueError(f"{what} must be uint8 or float in [0, 1]; got values in [{t.min():.3g}, {t.max():.3g}]")
    return t


def tensor_digest(t) -> str | None:
    if t is None:
        return None
    t = torch.as_tensor(t)
    return hashlib.sha256(t.cpu().contiguous().numpy().tobytes() + str(t.shape).encode()).hexdigest()[:12]


def choose_kept_label(
    attack: "Attack",
    y: torch.Tensor,
    taken: torch.Tensor,
    n: int,
    seed: int,
    any_class: bool = False,
    what: str = "extra",
) -> torch.Tensor:
    """n seeded indices for samples that get a trigger but keep their label (cover, noise-mode samples): none of
    `taken`, and (unless any_class or all-to-all) none of the target class. Sorted."""
    pool = torch.ones(len(y), dtype=torch.bool)
    pool[taken.cpu()] = False
    if not (any_class or attack.all_to_all):
        pool &= y.cpu() != attack.target
    candidates = torch.nonzero(pool).flatten()
    if n > len(candidates):
        raise ValueError(
            f"{attack.name}: {n} {what} images are asked for but only {len(candidates)} images are "
            f"left after poisoning; lower the rate or the {what} share"
        )
    gen = torch.Generator().manual_seed(seed)
    return candidates[torch.randperm(len(candidates), generator=gen)[:n]].sort().values


@dataclass
class Attack:
    target: int = 0  # all-to-one target label (unused when all_to_all)
    rate: float = 0.1  # share of the training set that is poisoned
    seed: int = 0  # seeds the trigger (where random) and the choice of poisoned images
    all_to_all: bool = False  # label y -> (y + 1) mod K instead of -> target (dirty-label attacks only)

    name = "attack"
    clean_label = False
    needs_fit = False  # True: a trained component must be loaded (pipeline.prepare_attack) before use

    def __post_init__(self):
        check_rate_and_target(self.rate, self.target)
        if not isinstance(self.all_to_all, bool):
            raise ValueError(f"all_to_all must be True or False; got {self.all_to_all!r}")
        if self.all_to_all and self.clean_label:
            raise ValueError(
                f"{self.name} is a clean-label attack (it keeps labels), so it has no all-to-all "
                f"mode; use all_to_all=False"
            )
        self._component = None

    @property
    def label(self) -> str:
        """The attack's name in tables: its registry name, with "-all2all" for the all-to-all variant."""
        return f"{self.name}-all2all" if self.all_to_all else self.name

    @property
    def single_target(self) -> int | None:
        """The one label every trigger leads to (evaluation side), or None for all-to-all, which has none."""
        return None if self.all_to_all else self.target

    # -- a trained component (attacks with needs_fit = True)
    def fit(self, x: torch.Tensor, y: torch.Tensor, num_classes: int, progress: bool = False) -> dict:
        """Train the component on the attacker's clean uint8 images; return its tensors (to be cached)."""
        raise NotImplementedError(f"{self.name} has no trained component")

    def load_component(self, tensors: dict) -> None:
        self._component = dict(tensors)

    @property
    def fitted(self) -> bool:
        return not self.needs_fit or self._component is not None

    def require_component(self) -> dict:
        if self.needs_fit and self._component is None:
            raise ValueError(
                f"{self.name} needs its trained component before use: call "
                f"ebyd_utils.pipeline.prepare_attack(attack, data, cache_dir) (or attack.load_component("
                f"attack.fit(x, y, num_classes)))"
            )
        return self._component

    # -- what subclasses define
    def trigger(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask (1, h, w), pattern (3, h, w)), both float in [0, 1]."""
        raise NotImplementedError

    # -- shared machinery
    def stamp(self, x01: torch.Tensor) -> torch.Tensor:
        mask, pattern = (t.to(x01.device) for t in self.trigger(*x01.shape[-2:]))
        return (1 - mask) * x01 + mask * pattern

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Triggered copies of uint8 images x (N, 3, H, W)."""
        check_images(x, f"{self.name} input")
        return (self.stamp(x.float() / 255).clamp(0, 1) * 255).round().to(torch.uint8)

    def eligible(self, y: torch.Tensor) -> torch.Tensor:
        """Indices that may be poisoned: non-target images (dirty label), target images (clean label), any
        image (all-to-all)."""
        if self.all_to_all:
            return torch.arange(len(y))
        return torch.nonzero((y == self.target) if self.clean_label else (y != self.target)).flatten()

    def poison_labels(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """The labels triggered images of true labels y are meant to get: the target, (y + 1) mod K for
        all-to-all (evaluation reads ASR against these), y itself for a clean-label attack's training images."""
        if self.all_to_all:
            return (y + 1) % num_classes
        return torch.full_like(y, self.target)

    def asr_pool(self, y: torch.Tensor) -> torch.Tensor:
        """Which test images ASR counts: those whose label differs from what the trigger asks (all of them for
        all-to-all)."""
        return torch.ones_like(y, dtype=torch.bool) if self.all_to_all else y != self.target

    def poison_images(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training images chosen for poisoning, triggered (attacks whose training-time trigger differs
        from the test-time one, e.g. LC's adversarial perturbation, override this)."""
        return self.apply(x)

    def choose(self, y: torch.Tensor, n_poison: int) -> torch.Tensor:
        """round(rate * N) eligible indices, drawn from the attack's seed, sorted."""
        candidates = self.eligible(y.cpu())
        if n_poison > len(candidates):
            kind = "target-class" if self.clean_label else "non-target"
            raise ValueError(
                f"{self.name}: rate {self.rate} asks for {n_poison} images but only {len(candidates)} "
                f"{kind} images exist; lower the rate"
            )
        gen = torch.Generator().manual_seed(self.seed)
        return candidates[torch.randperm(len(candidates), generator=gen)[:n_poison]].sort().values

    def extra_indices(self, y: torch.Tensor, poisoned: torch.Tensor) -> torch.Tensor:
        """Images the attack also triggers but does not relabel (cover, noise-mode, cross-trigger samples);
        none by default."""
        return torch.empty(0, dtype=torch.long)

    def poison(self, x: torch.Tensor, y: torch.Tensor, num_classes: int):
        check_images(x, "training images")
        if self.target >= num_classes:
            raise ValueError(f"target {self.target} is out of range for {num_classes} classes (0..{num_classes - 1})")
        idx = self.choose(y, round(self.rate * len(y))).to(x.device)
        x, y = x.clone(), y.clone()
        x[idx] = self.poison_images(x[idx], y[idx])
        if not self.clean_label:
            y[idx] = self.poison_labels(y[idx], num_classes)
        return x, y, idx

    def params(self) -> dict:
        """JSON-able parameters (user tensors as digests): the attack's part of every cache key."""
        out = {"attack": self.name}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "all_to_all" and not value:
                continue  # left out when off, so that all-to-one models keep the keys they had before it existed
            out[f.name] = tensor_digest(value) if torch.is_tensor(value) else value
        return out

    def trigger_tensors(self, h: int = 32, w: int = 32) -> dict:
        mask, pattern = self.trigger(h, w)
        return {"trigger_mask": mask, "trigger_pattern": pattern}
