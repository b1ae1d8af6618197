"""The one attack interface.

An attack is a value: its parameters and its seed. It

- ``poison(x, y, num_classes)`` -> (poisoned x, poisoned y, poisoned indices): exactly ``round(rate * N)``
  training images get the trigger (dirty-label attacks draw them from non-target images and relabel them to
  the target; clean-label attacks draw them from target-class images and keep their labels);
- ``apply(x)`` -> triggered uint8 images (test time);
- ``trigger_tensors(h, w)`` and ``params()``: what is saved with the model, so a checkpoint carries its trigger.

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


@dataclass
class Attack:
    target: int = 0        # all-to-one target label
    rate: float = 0.1      # share of the training set that is poisoned
    seed: int = 0          # seeds the trigger (where random) and the choice of poisoned images

    name = "attack"
    clean_label = False

    def __post_init__(self):
        check_rate_and_target(self.rate, self.target)

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
        """Indices that may be poisoned: non-target images (dirty label) or target images (clean label)."""
        return torch.nonzero((y == self.target) if self.clean_label else (y != self.target)).flatten()

    def poison(self, x: torch.Tensor, y: torch.Tensor, num_classes: int):
        check_images(x, "training images")
        if self.target >= num_classes:
            raise ValueError(f"target {self.target} is out of range for {num_classes} classes (0..{num_classes - 1})")
        n_poison = round(self.rate * len(y))
        candidates = self.eligible(y.cpu())
        if n_poison > len(candidates):
            kind = "target-class" if self.clean_label else "non-target"
            raise ValueError(f"{self.name}: rate {self.rate} asks for {n_poison} images but only {len(candidates)} "
                             f"{kind} images exist; lower the rate")
        gen = torch.Generator().manual_seed(self.seed)
        idx = candidates[torch.randperm(len(candidates), generator=gen)[:n_poison]].sort().values.to(x.device)
        x, y = x.clone(), y.clone()
        x[idx] = self.apply(x[idx])
        y[idx] = self.target
        return x, y, idx

    def params(self) -> dict:
        """JSON-able parameters (user tensors as digests): the attack's part of every cache key."""
        out = {"attack": self.name}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = tensor_digest(value) if torch.is_tensor(value) else value
        return out

    def trigger_tensors(self, h: int = 32, w: int = 32) -> dict:
        mask, pattern = self.trigger(h, w)
        return {"trigger_mask": mask, "trigger_pattern": pattern}
