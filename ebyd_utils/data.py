"""Datasets as uint8 tensors, decoded once, cached, resident on the device.

A dataset knows its train / test / defense / probe split and nothing about attacks:

- ``train``: what the model trainer (and so the attacker) sees;
- ``defense``: ``defense_size`` labelled clean images the defender unlearns on, held out from ``train``
  (so disjoint from every poisoned image by construction);
- ``probe``: ``probe_size`` clean images, also held out, on which the defender only reads predicted-class
  shares (labels kept for evaluation, never for a defender's decision);
- ``test``: the evaluation split (CA / ASR / RA).

The official code draws its 500 defense images from the training split the model saw; ours are held out
from training, the more realistic assumption of a defender who owns a little clean data.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from .config import DataConfig
from .core.store import load_tensors, save_tensors

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SYNTHETIC_SIZES = (2000, 500)  # generated train (before defense/probe are split off) and test images
GENERIC_CLASS = 3  # the generated class that resembles all others (see make_synthetic)
DATASETS = ("cifar10", "imagenette", "synthetic")


@dataclass
class ImageData:
    name: str  # label written into every result row, e.g. "CIFAR-10 (JPEG copy)"
    classes: list
    train_x: torch.Tensor  # uint8 (N, 3, H, W)
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    defense_x: torch.Tensor
    defense_y: torch.Tensor
    probe_x: torch.Tensor
    probe_y: torch.Tensor  # evaluation only: a defender reads predictions on probe_x, never these labels

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device) -> "ImageData":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in moved.items():
            if torch.is_tensor(value):
                moved[key] = value.to(device)
        return ImageData(**moved)

    def fingerprint(self) -> str:
        """Short hash of every split a unit may read -- train, test, defense and probe, images and labels, whole --
        and the dataset's name: a unit computed on other data is never reused (tested for each split). Computed
        once per object (~0.3 s for CIFAR-10's 60,000 images); the splits are never changed in place."""
        if getattr(self, "_fingerprint", None) is None:
            h = hashlib.sha256(self.name.encode())
            for f in fields(self):
                value = getattr(self, f.name)
                if torch.is_tensor(value):
                    h.update(f"{f.name}{tuple(value.shape)}{value.dtype}".encode())
                    h.update(value.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:12]
        return self._fingerprint


def check_images(x: torch.Tensor, what: str = "images") -> None:
    """Raise a clear error unless x is a uint8 (N, 3, H, W) batch."""
    if not torch.is_tensor(x) or x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        dtype = x.dtype if torch.is_tensor(x) else ""
        raise ValueError(f"{what} must be a uint8 tensor of shape (N, 3, H, W); got {shape} {dtype}")


# ---------------------------------------------------------------------------------------------- loading
def load_data(cfg: DataConfig, data_dir=None, cache_dir="cache", device="cpu") -> ImageData:
    """Load cfg.dataset, split off the defense and probe images, and move everything to `device`."""
    if cfg.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; choose one of {list(DATASETS)}")
    if cfg.resolution and cfg.dataset != "imagenette":
        raise ValueError(
            f"data.resolution applies to the ImageNet subset only; {cfg.dataset} keeps its native "
            f"size, so leave it 0 (got {cfg.resolution})"
        )
    if cfg.dataset == "synthetic":
        name, classes, (train_x, train_y, test_x, test_y) = "synthetic", _synthetic_classes(), make_synthetic()
    elif cfg.dataset == "imagenette":
        from .imagefolder import load_imagefolder

        name, classes, (train_x, train_y, test_x, test_y) = load_imagefolder(data_dir, cfg.resolution, cache_dir)
    else:
        name, (train_x, train_y, test_x, test_y) = load_cifar10(data_dir, cache_dir)
        classes = CIFAR10_CLASSES
    return split_data(name, classes, train_x, train_y, test_x, test_y, cfg).to(device)


def split_indices(n_train: int, num_classes: int, cfg: DataConfig):
    """Seeded (train, defense, probe) indices into the n_train training images."""
    held_out = cfg.defense_size + cfg.probe_size
    if cfg.defense_size < num_classes or held_out >= n_train:
        raise ValueError(
            f"defense_size must be >= {num_classes} and defense_size + probe_size "
            f"< {n_train} training images; got {cfg.defense_size} + {cfg.probe_size}"
        )
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(cfg.split_seed))
    defense, probe, rest = order[: cfg.defense_size], order[cfg.defense_size : held_out], order[held_out:]
    # a random subset (rest is in random order): image folders list the training set class by class
    rest = (rest[: cfg.train_subset] if cfg.train_subset else rest).sort().values
    return rest, defense, probe


def split_data(name, classes, train_x, train_y, test_x, test_y, cfg: DataConfig) -> ImageData:
    """Seeded split of the training images into train / defense / probe, then optional subsets."""
    rest, defense, probe = split_indices(len(train_y), len(classes), cfg)
    # a seeded random subset: image folders list the test set class by class
    test_keep = torch.randperm(len(test_y), generator=torch.Generator().manual_seed(cfg.split_seed))
    test_keep = test_keep[: cfg.test_subset].sort().values if cfg.test_subset else slice(None)
    return ImageData(
        name=name,
        classes=list(classes),
        train_x=train_x[rest],
        train_y=train_y[rest],
        test_x=test_x[test_keep],
        test_y=test_y[test_keep],
        defense_x=train_x[defense],
        defense_y=train_y[defense],
        probe_x=train_x[probe],
        probe_y=train_y[probe],
    )


def resolve_cifar_dir(data_dir) -> tuple[Path, str]:
    """Find CIFAR-10 under data_dir: an ImageFolder copy (train/, test/) or torchvision's batches."""
    if data_dir is None:
        raise ValueError(
            "CIFAR-10 needs DATA_DIR: a folder holding train/<class>/*.jpg and test/<class>/*.jpg "
            "(e.g. the JPEG copy, `tar xzf cifar10-jpg.tar.gz -C data/`), or torchvision's "
            "cifar-10-batches-py (downloaded there when online)"
        )
    root = Path(data_dir).expanduser()
    for candidate in (root, root / "cifar10-jpg"):
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate, "imagefolder"
    return root, "torchvision"


def load_cifar10(data_dir, cache_dir="cache"):
    """CIFAR-10 as uint8 tensors; decoded once and cached as safetensors under cache_dir/data/."""
    root, layout = resolve_cifar_dir(data_dir)
    name = "CIFAR-10 (JPEG copy)" if layout == "imagefolder" else "CIFAR-10"
    key = hashlib.sha256(f"{root.resolve()}|{layout}".encode()).hexdigest()[:12]
    cache_file = Path(cache_dir) / "data" / f"cifar10-{layout}-{key}.safetensors" if cache_dir else None
    cached = load_tensors(cache_file) if cache_file else None
    if cached is None:
        tensors = _decode_imagefolder(root) if layout == "imagefolder" else _load_torchvision(root)
        cached = dict(zip(("train_x", "train_y", "test_x", "test_y"), tensors))
        if cache_file:
            save_tensors(cache_file, cached)
    return name, (cached["train_x"], cached["train_y"], cached["test_x"], cached["test_y"])


def _decode_imagefolder(root: Path):
    from torchvision.io import ImageReadMode, decode_image, read_file
    from tqdm.auto import tqdm

    out = []
    for split in ("train", "test"):
        class_dirs = sorted(p for p in (root / split).iterdir() if p.is_dir())
        if [p.name for p in class_dirs] != CIFAR10_CLASSES:
            raise ValueError(
                f"{root / split} must hold the ten CIFAR-10 class folders {CIFAR10_CLASSES}; "
                f"found {[p.name for p in class_dirs]}"
            )
        images, labels = [], []
        for label, class_dir in enumerate(tqdm(class_dirs, desc=f"decode {split}", leave=False)):
            for path in sorted(class_dir.iterdir()):
                images.append(decode_image(read_file(str(path)), mode=ImageReadMode.RGB))
                labels.append(label)
        out += [torch.stack(images), torch.tensor(labels, dtype=torch.int64)]
    return out


def _load_torchvision(root: Path):
    from torchvision.datasets import CIFAR10

    out = []
    for train in (True, False):
        try:
            ds = CIFAR10(root=str(root), train=train, download=True)
        except Exception as err:  # offline, or a partial download
            raise ValueError(
                f"CIFAR-10 is not in DATA_DIR={root} and could not be downloaded ({err}). "
                "Go online once, or point DATA_DIR at a folder with train/<class>/ and "
                "test/<class>/ images (the ImageFolder layout)"
            ) from err
        out += [torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.int64)]
    return out


# ------------------------------------------------------------------------------------ generated data
def _synthetic_classes():
    return [f"pattern{i}" for i in range(10)]


def make_synthetic(n_train: int = SYNTHETIC_SIZES[0], n_test: int = SYNTHETIC_SIZES[1], seed: int = 0):
    """A learnable, deterministic 10-class set of 32x32 colour images (never labelled CIFAR).

    Each class is a smooth random colour field (a 4x4 grid upsampled) with a class-specific stripe
    orientation. Every image mixes its class's field with a weaker field of a random other class (so classes
    overlap); class GENERIC_CLASS is mostly the mean of all classes, as natural data has generic classes.
    Then each image gets a random brightness, a small shift and pixel noise.

    Why noise 0.15 and a generic class at 0.8 (measured with scratch studies over 6 seeds, smoke profile):
    with near-noiseless images (0.05) a BadNets patch is the only high-frequency pattern the model ever
    sees, so after Clean Unlearning clean images drift to arbitrary classes and the exposure read 0.10-0.45;
    with texture in every image, as in natural images, a learned backdoor is exposed in every seed (excess
    share 0.48-0.74) while clean models stay at <= 0.25.
    """
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(10, 3, 4, 4, generator=g)
    prototypes = torch.nn.functional.interpolate(prototypes, size=(32, 32), mode="bicubic", align_corners=False)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    for c in range(10):
        angle = math.pi * c / 10
        prototypes[c] += 0.25 * torch.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 0.8)
    # like CIFAR's cat, one generic class sits between the others (meant to attract a clean model's drift;
    # measured, clean models still drift onto varied classes, which the clean references must absorb)
    prototypes[GENERIC_CLASS] = 0.2 * prototypes[GENERIC_CLASS] + 0.8 * prototypes.mean(0)

    def sample(n):
        y = torch.arange(n) % 10
        y = y[torch.randperm(n, generator=g)]
        distractor = (y + torch.randint(1, 10, (n,), generator=g)) % 10
        weight = 0.6 * torch.rand(n, 1, 1, 1, generator=g)
        x = (prototypes[y] + weight * prototypes[distractor]) / (1 + weight)
        x = x * (0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=g))
        shifts = torch.randint(-3, 4, (n, 2), generator=g)
        x = torch.stack([torch.roll(img, tuple(s.tolist()), dims=(1, 2)) for img, s in zip(x, shifts)])
        x = x + 0.15 * torch.randn(x.shape, generator=g)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), y.to(torch.int64)

    return (*sample(n_train), *sample(n_test))


# ------------------------------------------------------------------------------------- augmentation
def augment(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop (reflect-padded by `pad`) and horizontal flip of a uint8 batch, on its device."""
    n, _, h, w = x.shape
    if pad:
        padded = (
            torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
            if x.is_floating_point()
            else torch.nn.functional.pad(x.float(), (pad,) * 4, mode="reflect").to(x.dtype)
        )
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, w)
        x = padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x.contiguous()
