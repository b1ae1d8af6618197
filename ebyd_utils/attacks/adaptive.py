"""Adap-Blend and Adap-Patch (Qi, Xie, Li, Wu & Mittal, ICLR 2023, "Revisiting the Assumption of Latent
Separability for Backdoor Defenses"): dirty-label attacks built to leave no separate latent cluster of poisons.

Shared here: (1) asymmetric triggers: the trigger is split into parts; each training image (poisoned or cover)
gets a seeded random subset of them at a low opacity `train_alpha`, the test trigger every part at `test_alpha`;
(2) cover ("regularisation") samples: a further round(cover_rate * N) seeded images, disjoint from the poisoned
ones and not of the target class, get the same kind of partial trigger and KEEP their labels. `poison()` returns
the relabelled indices only; `cover_indices` (alias `extra_indices`) names the others. Every stamp is
x' = x + a (k - x): no pixel moves by more than a * 255 (a: the opacity in use).

Adap-Blend (`adap_blend`): the key is cut into a g x g grid of pieces (original 16); a training image blends
pieces - round(mask_rate * pieces) of them (original mask_rate 0.5: half) at train_alpha 0.15, the test trigger
the whole key at test_alpha 0.2 (the official READMEs' values). Ours: the key is a seeded smooth random colour
image made in code (an 8 x 8 grid of uniform colours, upsampled bicubically, stretched to full contrast), not
the Hello Kitty image; pieces split at floor(i * size / g), so any resolution works.

Adap-Patch (`adap_patch`): ours stamps 4 seeded random colour squares of side `patch_size` (default
max(2, round(min(h, w) / 4)) = 8 px on CIFAR; 4 and 6 px at train_alpha 0.5 did not implant on the smoke data,
ASR 0.00 and 0.16), each at a seeded place in its own cell of a ceil(sqrt(patches))-square grid (no overlap);
a training image gets `patches_per_image` (2) of them at train_alpha 0.5, the test trigger all of them at
test_alpha 1.0. The original (Unispac/Circumventing-Backdoor-Defenses, vtu81/backdoor-toolbox: adaptive_patch.py,
config.py) uses 4 images (phoenix, firefox, a BadNets patch, the Trojan square) at alphas 0.5/0.2/0.5/0.3,
plants ONE per training image (poisoned and cover sets cut in quarters) and tests with two other stamps
(phoenix_corner2, badnet_patch4) at alpha 1; ours tests with the union of the training patches.

Rates: the originals poison 0.3% of CIFAR-10 (any class) with 0.3% cover (Adap-Patch 0.6%); ours default to
3% + 3% of non-target images, which implant on the smoke data (1,500 generated images, 6 epochs, seed 0: ASR
1.00 Adap-Blend, 0.94 Adap-Patch, CA 1.00). The official EBYD code has neither attack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Attack, choose_kept_label

TRIGGER_OFFSET, POISON_OFFSET, COVER_OFFSET = 201, 202, 203  # seed offsets: trigger, poisoned subsets, cover
KEY_CELLS = 8  # Adap-Blend key: an 8 x 8 grid of random colours, upsampled smoothly


def random_subsets(n: int, parts: int, keep: int, gen: torch.Generator) -> torch.Tensor:
    """(n, parts) float: for each of n images, `keep` of the parts drawn uniformly."""
    ranks = torch.rand(n, parts, generator=gen).argsort(dim=1).argsort(dim=1)
    return (ranks < keep).float()


def check_alpha(attack, field: str) -> None:
    value = getattr(attack, field)
    if not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise ValueError(f"{attack.name} {field} must be a number in (0, 1] (opacity); got {value!r}")


def check_count(attack, field: str, low: int, high: int | None = None) -> None:
    value = getattr(attack, field)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        allowed = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        raise ValueError(f"{attack.name} {field} must be {allowed}; got {value!r}")


@dataclass
class AdaptiveAttack(Attack):
    """A trigger made of parts; training images get a random subset, the test trigger all of them."""

    rate: float = 0.03  # share of the training set poisoned (relabelled)
    cover_rate: float = 0.03  # share of the training set given a partial trigger, labels kept (0 = none)

    # -- what each attack defines
    def parts(self, h, w) -> torch.Tensor:
        """(P, h, w) binary masks of the trigger's parts (disjoint)."""
        raise NotImplementedError

    def pattern(self, h, w) -> torch.Tensor:
        """(3, h, w) in [0, 1]: what the parts are blended towards."""
        raise NotImplementedError

    def kept_parts(self) -> int:
        raise NotImplementedError

    # -- shared
    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.cover_rate, (int, float)) and 0 <= self.cover_rate < 1):
            raise ValueError(
                f"{self.name} cover_rate must be a number in [0, 1) (share of the training set); "
                f"got {self.cover_rate!r}"
            )
        check_alpha(self, "train_alpha")
        check_alpha(self, "test_alpha")

    def trigger(self, h, w):
        return self.test_alpha * self.parts(h, w).amax(0, keepdim=True), self.pattern(h, w)

    def partial_stamp(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        """Each uint8 image blended at train_alpha with its own seeded subset of the parts."""
        if not len(x):
            return x
        h, w = x.shape[-2:]
        parts = self.parts(h, w)
        gen = torch.Generator().manual_seed(self.seed + offset)
        chosen = random_subsets(len(x), len(parts), self.kept_parts(), gen)
        mask = self.train_alpha * torch.einsum("np,phw->nhw", chosen, parts)[:, None].to(x.device)
        x01 = x.float() / 255
        out = x01 + mask * (self.pattern(h, w).to(x.device) - x01)
        return (out.clamp(0, 1) * 255).round().to(torch.uint8)

    def poison_images(self, x, y):
        return self.partial_stamp(x, POISON_OFFSET)

    def cover_indices(self, y: torch.Tensor, poisoned: torch.Tensor) -> torch.Tensor:
        """round(cover_rate * N) seeded non-target indices, disjoint from the poisoned ones."""
        return choose_kept_label(
            self, y, poisoned, round(self.cover_rate * len(y)), self.seed + COVER_OFFSET, what="cover"
        )

    extra_indices = cover_indices  # the common name of label-keeping extras (cover samples, noise mode)

    def poison(self, x, y, num_classes):
        """Base poisoning (partial trigger, relabelled), then the cover images (partial trigger, labels kept);
        returns the relabelled indices only."""
        x, y, idx = super().poison(x, y, num_classes)
        cover = self.cover_indices(y, idx).to(x.device)
        x[cover] = self.partial_stamp(x[cover], COVER_OFFSET)
        return x, y, idx


@dataclass
class AdapBlend(AdaptiveAttack):
    train_alpha: float = 0.15  # blend opacity of training (poisoned and cover) images
    test_alpha: float = 0.2  # blend opacity of the test trigger (all pieces)
    pieces: int = 16  # pieces of the key (a square number: a g x g grid)
    mask_rate: float = 0.5  # share of the pieces left out of each training image

    name = "adap_blend"

    def __post_init__(self):
        super().__post_init__()
        check_count(self, "pieces", 1)
        if math.isqrt(self.pieces) ** 2 != self.pieces:
            raise ValueError(f"adap_blend pieces must be a square number (a g x g grid, e.g. 16); got {self.pieces}")
        if not (isinstance(self.mask_rate, (int, float)) and 0 <= self.mask_rate < 1 and self.kept_parts() >= 1):
            raise ValueError(
                f"adap_blend mask_rate must be in [0, 1) and leave at least one of the {self.pieces} "
                f"pieces; got {self.mask_rate!r}"
            )

    def kept_parts(self):
        return self.pieces - round(self.mask_rate * self.pieces)

    def parts(self, h, w):
        g = math.isqrt(self.pieces)
        if g > min(h, w):
            raise ValueError(f"adap_blend: {self.pieces} pieces ({g} x {g}) do not fit a {h}x{w} image")
        piece_row = torch.arange(h) * g // h
        piece_col = torch.arange(w) * g // w
        piece_of_pixel = piece_row[:, None] * g + piece_col[None, :]
        return (piece_of_pixel[None] == torch.arange(self.pieces)[:, None, None]).float()

    def pattern(self, h, w):
        gen = torch.Generator().manual_seed(self.seed + TRIGGER_OFFSET)
        coarse = torch.rand(1, 3, KEY_CELLS, KEY_CELLS, generator=gen)
        key = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[0]
        low, high = key.amin(dim=(1, 2), keepdim=True), key.amax(dim=(1, 2), keepdim=True)
        return (key - low) / (high - low + 1e-8)  # full contrast in every channel


@dataclass
class AdapPatch(AdaptiveAttack):
    train_alpha: float = 0.5  # opacity of the patches on training (poisoned and cover) images
    test_alpha: float = 1.0  # opacity of the test trigger (all patches)
    patches: int = 4  # number of patch triggers
    patch_size: int | None = None  # side of each patch (pixels); None = max(2, round(min(h, w) / 4))
    patches_per_image: int = 2  # patches each training image gets, drawn per image

    name = "adap_patch"

    def __post_init__(self):
        super().__post_init__()
        check_count(self, "patches", 1)
        check_count(self, "patches_per_image", 1, self.patches)
        if self.patch_size is not None:
            check_count(self, "patch_size", 1)

    def kept_parts(self):
        return self.patches_per_image

    def side(self, h, w) -> int:
        return self.patch_size if self.patch_size is not None else max(2, round(min(h, w) / 4))

    def paint(self, h, w):
        """(P, h, w) masks and the (3, h, w) pattern of the patches: seeded colours, each patch at a seeded place
        inside its own cell of a ceil(sqrt(P))-square grid."""
        s, g = self.side(h, w), math.ceil(math.sqrt(self.patches))
        cell_h, cell_w = h // g, w // g
        if s > min(cell_h, cell_w):
            raise ValueError(
                f"adap_patch: {self.patches} patches of side {s} do not fit a {h}x{w} image (each needs "
                f"its own {cell_h}x{cell_w} cell); lower patch_size to at most {min(cell_h, cell_w)}"
            )
        gen = torch.Generator().manual_seed(self.seed + TRIGGER_OFFSET)
        rows = torch.randint(0, cell_h - s + 1, (self.patches,), generator=gen).tolist()
        cols = torch.randint(0, cell_w - s + 1, (self.patches,), generator=gen).tolist()
        colours = torch.rand(self.patches, 3, s, s, generator=gen)
        masks, pattern = torch.zeros(self.patches, h, w), torch.zeros(3, h, w)
        for j in range(self.patches):
            r, c = (j // g) * cell_h + rows[j], (j % g) * cell_w + cols[j]
            masks[j, r : r + s, c : c + s] = 1
            pattern[:, r : r + s, c : c + s] = colours[j]
        return masks, pattern

    def parts(self, h, w):
        return self.paint(h, w)[0]

    def pattern(self, h, w):
        return self.paint(h, w)[1]
