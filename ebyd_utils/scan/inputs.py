"""The scanner's clean data: the user's labelled clean images (or texts), split into the defense half CUL ascends on
and the probe half on which it only counts predictions (EBYD, Li et al. 2024, Sec. 3-4.1: ~500 clean images).

Sources:
- an ImageFolder, ``root/<class>/*.jpg|png``: classes are the folder names in sorted order (torchvision's rule),
  or the order of `class_names` when given (the model's label order; the folders may hold a subset of them). At
  most `n` images are drawn, seeded, and each is resized (shorter side) and centre-cropped to the input size;
- ``"cifar10"``: the profile's CIFAR-10 defense and probe images (`data.load_data`; held out of the references'
  training split, so the scan and the references are read on the same images);
- ``"synthetic"``: the generated set's defense and probe images (the smoke profile's; tests and the measurement);
- text: a CSV or TSV with a text column and an integer label column (`scan/text.py`).

Fewer than `minimum_images(K)` images is an error that says how many are needed, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Profile
from ..data import load_data

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MIN_PER_CLASS = 10  # defense images a class: CUL must push every class's accuracy down, so each must be there
MIN_PROBE = 100  # probe images: a share counted on 100 images has a standard error of at most 0.05, under the
# thresholds (0.12 at quick) a flag rests on
BUILT_IN = ("cifar10", "synthetic")


@dataclass
class CleanData:
    """The defender's clean data as the scan uses it (labels of the probe half are never read)."""

    source: str  # folder, file or built-in name, as the report states it
    classes: list  # class names in the model's label order
    defense_x: object  # uint8 images (N, 3, H, W) or a text Tokens batch
    defense_y: torch.Tensor
    probe_x: object

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def minimum_images(num_classes: int) -> int:
    """The fewest clean images a scan takes: MIN_PER_CLASS a class to unlearn on, MIN_PROBE to count on."""
    return MIN_PER_CLASS * num_classes + MIN_PROBE


def check_count(n: int, num_classes: int, source) -> None:
    need = minimum_images(num_classes)
    if n < need:
        raise ValueError(
            f"{source} holds {n} clean image(s) the scan can use; it needs at least {need} for {num_classes} "
            f"classes: {MIN_PER_CLASS} a class for Clean Unlearning to erase every class, and {MIN_PROBE} more on "
            "which to count where clean inputs drift (a share counted on fewer is too noisy for the thresholds). "
            "Add images, or raise n"
        )


def split_half(x, y: torch.Tensor, defense_size: int, probe_size: int, seed: int = 0):
    """Seeded (defense_x, defense_y, probe_x): up to defense_size labelled images, the rest (up to probe_size) to
    count on; the defense half gets half the images when there are fewer than the profile asks for."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_defense = min(defense_size, len(y) // 2)
    defense, probe = order[:n_defense], order[n_defense : n_defense + probe_size]
    return x[defense], y[defense], x[probe]


def image_data(source, profile: Profile, input_size: int, n: int | None, class_names=None, data_dir=None,
               cache_dir="cache", seed: int = 0) -> CleanData:  # fmt: skip
    """The clean images of `source` (see the module docstring) at input_size, split into defense and probe."""
    n = n or profile.data.defense_size + profile.data.probe_size
    if str(source) in BUILT_IN:
        return _built_in(str(source), profile, input_size, n, class_names, data_dir, cache_dir)
    x, y, classes = read_imagefolder(source, input_size, n, class_names, seed)
    check_count(len(y), len(classes), source)
    return CleanData(str(source), classes, *split_half(x, y, profile.data.defense_size, profile.data.probe_size, seed))


def _built_in(name, profile: Profile, input_size: int, n: int, class_names, data_dir, cache_dir) -> CleanData:
    if name != profile.data.dataset:
        raise ValueError(
            f"data {name!r} is the {name} profile data; this scan runs profile {profile.name!r} "
            f"({profile.data.dataset}): pass profile='smoke' for 'synthetic', or an ImageFolder of your images"
        )
    data = load_data(profile.data, data_dir=data_dir, cache_dir=cache_dir)
    if input_size != data.defense_x.shape[-1]:
        raise ValueError(f"{name} images are {data.defense_x.shape[-1]} px; the model's input_size is {input_size}")
    if class_names is not None and list(class_names) != list(data.classes):
        raise ValueError(f"{name}'s classes are {data.classes}; got class_names {list(class_names)}")
    half = min(len(data.defense_y), n // 2)
    check_count(half + min(len(data.probe_x), n - half), data.num_classes, name)
    return CleanData(name, list(data.classes), data.defense_x[:half], data.defense_y[:half], data.probe_x[: n - half])


def read_imagefolder(root, input_size: int, n: int, class_names=None, seed: int = 0):
    """(uint8 images (n', 3, s, s), labels, classes) of a seeded draw of at most n images of root/<class>/."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"no clean-data folder at {root}: pass an ImageFolder (root/<class>/*.jpg) or 'cifar10'")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = list(class_names) if class_names is not None else folders
    unknown = sorted(set(folders) - set(classes))
    if unknown:
        raise ValueError(f"{root} has class folders {unknown} that are not among class_names {classes}")
    files = [(p, classes.index(c)) for c in folders for p in sorted((root / c).iterdir()) if _is_image(p)]
    if len(folders) < 2 or not files:
        raise ValueError(
            f"{root} holds {len(files)} images in {len(folders)} class folder(s); the scan needs an ImageFolder, "
            f"root/<class>/*.jpg, with images of at least 2 classes (at least {minimum_images(len(classes))} for "
            f"{len(classes)} classes)"
        )
    pick = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()
    images = [_decode(files[i][0], input_size) for i in pick]
    labels = torch.tensor([files[i][1] for i in pick], dtype=torch.int64)
    return torch.stack(images), labels, classes


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _decode(path: Path, size: int) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms.v2 import functional as F

    try:
        image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError as err:
        raise ValueError(f"could not decode {path} ({err}); remove it or replace it with a JPEG/PNG") from err
    if image.shape[-2:] != (size, size):
        image = F.center_crop(F.resize(image, size, antialias=True), [size, size])
    return image.contiguous()
