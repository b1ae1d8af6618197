"""LC, the label-consistent backdoor (Turner, Tsipras & Madry 2019, "Label-Consistent Backdoor Attacks",
arXiv:1912.02771; code MadryLab/label-consistent-backdoor-code): a clean-label attack.

Target-class training images, whose labels stay correct, are first made hard to classify by a projected-gradient
(PGD) L-inf perturbation that raises a surrogate's loss on their true label, then stamped with a corner patch.
The model cannot fit them from their content, so it leans on the patch; at test time the patch alone (no
perturbation, no component) pulls any image to the target.

Ours: the surrogate is the package's FastCNN trained by the package's loop on the attacker's clean training
images (`fit`: `fit_images` of them drawn from the seed, `surrogate_epochs` epochs; the component is its
weights); PGD from zero, `steps` sign steps of `step` within `eps` (default 8/255, the paper's smaller budget;
it also used 16/255), rounded to uint8. Patch: Turner et al.'s "all-corners" trigger (`corners=4`, default), a
3x3 black/white grid at each corner -- the official EBYD grid (`gridTrigger`, which is also Turner et al.'s
bottom-right pattern) at the right corners and its left-right mirror at the left ones, so the patch survives
horizontal flips; `corners=1` gives the bottom-right grid only, as the official EBYD code. Default rate 0.05
of the training set, i.e. about half the target class on balanced CIFAR-10 (Turner et al. varied the share of
the target class poisoned).
Measured: docs/methods.md, "LC (label-consistent)".
Differs from Turner et al.: their perturbations came from an adversarially trained (robust) model, ours from a
standard one; no GAN-interpolation variant; full-amplitude patch only. Differs from the official EBYD code
(`_CLTrigger`): it adds one precomputed universal perturbation (not shipped) to every poisoned image and
min-max rescales it, then stamps the bottom-right grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .badnets import OFFICIAL_GRID
from .base import Attack
from .components import load_module, module_tensors, new_surrogate, seeded, subsample, train_surrogate

FIT_SEED_OFFSET = 101  # the surrogate's seed is seed + this (the poisoned set is drawn from seed itself)


@dataclass
class LC(Attack):
    rate: float = 0.05  # share of the whole training set (all of it target-class images)
    eps: float = 8 / 255  # PGD L-inf budget ([0, 1] pixel units)
    step: float = 2 / 255  # PGD step size ([0, 1] pixel units)
    steps: int = 10  # PGD iterations
    corners: int = 4  # patch corners: 4 (Turner et al.'s all-corners) or 1 (bottom-right, EBYD)
    fit_images: int = 20000  # training images the surrogate learns from (0 = all)
    surrogate_epochs: int = 4  # surrogate training epochs

    name = "lc"
    clean_label = True
    needs_fit = True

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.eps <= 1:
            raise ValueError(f"LC eps must be in [0, 1] ([0, 1] pixel units, e.g. 8/255); got {self.eps!r}")
        if not 0 < self.step <= 1:
            raise ValueError(f"LC step must be in (0, 1] ([0, 1] pixel units, e.g. 2/255); got {self.step!r}")
        for field, value, low in (
            ("steps", self.steps, 0),
            ("fit_images", self.fit_images, 0),
            ("surrogate_epochs", self.surrogate_epochs, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"LC {field} must be an int >= {low}; got {value!r}")
        if self.corners not in (1, 4):
            raise ValueError(
                f"LC corners must be 4 (Turner et al.'s all-corners patch) or 1 (bottom-right only, "
                f"the official EBYD grid); got {self.corners!r}"
            )

    # -- test time: the patch only
    def trigger(self, h, w):
        if h < 6 or w < 6:
            raise ValueError(f"LC's 3x3 corner patches need an image of at least 6x6; got {h}x{w}")
        mask, pattern = torch.zeros(1, h, w), torch.zeros(3, h, w)
        mirrored = OFFICIAL_GRID.flip(-1)
        places = [(h - 3, w - 3, OFFICIAL_GRID)]
        if self.corners == 4:
            places += [(0, w - 3, OFFICIAL_GRID), (0, 0, mirrored), (h - 3, 0, mirrored)]
        for row, col, grid in places:
            mask[:, row : row + 3, col : col + 3] = 1
            pattern[:, row : row + 3, col : col + 3] = grid
        return mask, pattern

    # -- the component: a clean surrogate
    def fit(self, x, y, num_classes, progress=False):
        with seeded(self.seed + FIT_SEED_OFFSET, x.device) as gen:
            x_fit, y_fit = subsample(x, y, self.fit_images, gen)
            model = train_surrogate(
                x_fit, y_fit, num_classes, self.surrogate_epochs, self.seed + FIT_SEED_OFFSET, progress
            )
        return module_tensors(model, "surrogate")

    def load_component(self, tensors):
        super().load_component(tensors)
        num_classes = tensors["surrogate.head.weight"].shape[0]
        self._surrogate = load_module(lambda: new_surrogate(num_classes), tensors, "surrogate")

    # -- training time: PGD, then the patch
    def adversarial(self, x01: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """x01 perturbed within eps (L-inf) to raise the surrogate's cross-entropy on `labels` (fp32)."""
        self.require_component()
        model = self._surrogate.to(x01.device)
        out = []
        for start in range(0, len(x01), batch_size):
            x, t = x01[start : start + batch_size], labels[start : start + batch_size]
            delta = torch.zeros_like(x)
            for _ in range(self.steps):
                delta.requires_grad_(True)
                loss = F.cross_entropy(model((x + delta).clamp(0, 1)), t)
                (grad,) = torch.autograd.grad(loss, delta)
                delta = (delta.detach() + self.step * grad.sign()).clamp(-self.eps, self.eps)
            out.append((x + delta).clamp(0, 1).detach())
        return torch.cat(out) if out else x01.clone()

    def poison_images(self, x, y):
        hard = self.adversarial(x.float() / 255, y.to(x.device))
        hard = (hard * 255).round().to(torch.uint8)  # stored as images, like the rest of the training set
        return self.apply(hard)
