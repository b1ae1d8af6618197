"""What the trigger-recovery methods return, and how it is stored: Neural Cleanse's per-class masks and patterns
(`NeuralCleanseResult`), BTI-DBF's generator network and its reading (`TriggerGenerator`, `BTIResult`). Each record
converts to (dict of tensors, JSON-able info) with `to_tensors()` and back with `from_tensors()`, so that it is
cached as safetensors (no pickled code). The methods themselves: `neural_cleanse.py`, `bti_dbf.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ...data import check_images


@dataclass
class NeuralCleanseResult:
    classes: list  # class indices that were inverted (all classes unless narrowed)
    masks: torch.Tensor  # (K, 1, H, W) in [0, 1]
    patterns: torch.Tensor  # (K, 3, H, W) in [0, 1]
    norms: torch.Tensor  # (K,) L1 norm of each mask (pixels)
    anomaly: torch.Tensor  # (K,) anomaly index of each norm over the inverted classes (NaN if < 3)
    success: torch.Tensor  # (K,) share of the defender's images the recovered stamp sends to the class
    flagged_label: int | None  # the smallest-norm class with anomaly > threshold and norm < median
    seconds: float
    epochs_run: list = field(default_factory=list)  # epochs each class ran before (early) stop
    settings: dict = field(default_factory=dict)  # the NeuralCleanseConfig used, plus the seed

    method = "nc"

    def index(self, label: int) -> int:
        """Row of `label` in masks / patterns / norms."""
        if label not in self.classes:
            raise ValueError(f"class {label} was not inverted; inverted classes: {self.classes}")
        return self.classes.index(label)

    def trigger(self, label: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask (1, H, W), pattern (3, H, W)) recovered for `label`."""
        i = self.index(label)
        return self.masks[i], self.patterns[i]

    TENSORS = ("masks", "patterns", "norms", "anomaly", "success")  # stored as tensors; the rest as JSON

    def to_tensors(self) -> tuple[dict, dict]:
        """(dict of tensors, JSON-able info) for a safetensors file and its metadata."""
        tensors = {k: getattr(self, k).detach().cpu().contiguous() for k in self.TENSORS}
        info = {
            "method": self.method,
            "classes": list(self.classes),
            "flagged_label": self.flagged_label,
            "seconds": self.seconds,
            "epochs_run": list(self.epochs_run),
            "settings": dict(self.settings),
        }
        return tensors, info

    @classmethod
    def from_tensors(cls, tensors: dict, info: dict) -> "NeuralCleanseResult":
        if info.get("method") != cls.method:
            raise ValueError(f"not a Neural Cleanse record (method {info.get('method')!r})")
        return cls(
            **{k: tensors[k] for k in cls.TENSORS},
            classes=list(info["classes"]),
            flagged_label=info["flagged_label"],
            seconds=info["seconds"],
            epochs_run=list(info.get("epochs_run", [])),
            settings=dict(info.get("settings", {})),
        )


# ------------------------------------------------------------------------------------------ generator
def _block(c_in: int, c_out: int) -> nn.Sequential:
    """conv -> instance norm -> leaky ReLU, twice (the authors' U-Net block)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.LeakyReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.LeakyReLU(),
    )


class TriggerGenerator(nn.Module):
    """A 2-level U-Net that returns clamp(x + r(x), 0, 1) for float images in [0, 1] of any size.

    The output layer starts near zero, so G starts close to the identity (no pretraining needed); not at
    exactly zero, since the generator loss has no gradient at G(x) = x (its feature MSE is 0 there)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.width = width
        self.enc1, self.enc2 = _block(3, width), _block(width, 2 * width)
        self.middle = _block(2 * width, 4 * width)
        self.dec2, self.dec1 = _block(6 * width, 2 * width), _block(3 * width, width)
        self.out = nn.Conv2d(width, 3, 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)

    @staticmethod
    def _up(x, like):
        return F.interpolate(x, size=like.shape[-2:], mode="nearest")

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2, ceil_mode=True))
        mid = self.middle(F.max_pool2d(e2, 2, ceil_mode=True))
        d2 = self.dec2(torch.cat([self._up(mid, e2), e2], 1))
        d1 = self.dec1(torch.cat([self._up(d2, e1), e1], 1))
        return (x + self.out(d1)).clamp(0, 1)


# ------------------------------------------------------------------------------------------- result
@dataclass
class BTIResult:
    label: int  # the class most generated images are sent to
    label_share: float  # share of the defender's generated images sent to `label`
    shares: torch.Tensor  # (K,) class shares of G(x) over the defender's images
    feature_mask: torch.Tensor  # benign-feature mask in [0, 1], shape of one image's feature maps
    mean_perturbation: torch.Tensor  # (3, H, W) mean of G(x) - x over the defender's images, in [-1, 1]
    perturbation_map: torch.Tensor  # (1, H, W) mean |G(x) - x| over images and channels, scaled to max 1
    generator: TriggerGenerator  # the recovered (sample-specific) trigger: x -> G(x)
    seconds: float
    losses: dict = field(default_factory=dict)  # mean benign / backdoor / norm MSE over the last steps
    settings: dict = field(default_factory=dict)  # the BTIConfig used, plus the seed

    method = "bti"

    @torch.no_grad()
    def stamp(self, x: torch.Tensor) -> torch.Tensor:
        """The recovered trigger applied to uint8 images x: G(x) as uint8."""
        check_images(x, "images to stamp")
        generator = self.generator.to(x.device).eval()
        out = [generator(x[i : i + 500].float() / 255) for i in range(0, len(x), 500)]
        return (torch.cat(out) * 255).round().to(torch.uint8)

    TENSORS = ("shares", "feature_mask", "mean_perturbation", "perturbation_map")  # the rest: the generator, JSON

    def to_tensors(self) -> tuple[dict, dict]:
        """(dict of tensors, JSON-able info) for a safetensors file and its metadata."""
        tensors = {k: getattr(self, k) for k in self.TENSORS}
        tensors.update({f"generator.{k}": v for k, v in self.generator.state_dict().items()})
        info = {
            "method": self.method,
            "label": self.label,
            "label_share": self.label_share,
            "seconds": self.seconds,
            "generator_width": self.generator.width,
            "losses": dict(self.losses),
            "settings": dict(self.settings),
        }
        return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, info

    @classmethod
    def from_tensors(cls, tensors: dict, info: dict) -> "BTIResult":
        if info.get("method") != cls.method:
            raise ValueError(f"not a BTI-DBF record (method {info.get('method')!r})")
        generator = TriggerGenerator(info["generator_width"])
        generator.load_state_dict({k[len("generator.") :]: v for k, v in tensors.items() if k.startswith("generator.")})
        return cls(
            **{k: tensors[k] for k in cls.TENSORS},
            label=info["label"],
            label_share=info["label_share"],
            generator=generator.eval(),
            seconds=info["seconds"],
            losses=dict(info.get("losses", {})),
            settings=dict(info.get("settings", {})),
        )
