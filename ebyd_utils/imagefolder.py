"""The ImageNet subset: Imagenette (Howard 2019: ten easy ImageNet classes) by default, or any ImageFolder.

The paper's ImageNet subset is not known exactly, so Imagenette is the documented default. DATA_DIR may hold:

- ``imagenette2-320/{train,val}/<wnid>/*.JPEG`` (what ``torchvision.datasets.Imagenette(size="320px")``
  downloads), or ``imagenette2/...`` / ``imagenette2-160/...``;
- ``{train,val}/<class>/*`` or ``{train,test}/<class>/*``: any ImageFolder subset (ImageNet or not);
- nothing: online, torchvision downloads Imagenette (320 px) there; offline, a ValueError names DATA_DIR.

Every image is resized (shorter side) to the profile's ``data.resolution`` and centre-cropped to a square,
decoded once into uint8 tensors and cached under cache_dir/data/ by (folder, resolution). The val split is
the test split (Imagenette has no other); defense and probe images are held out of train as for CIFAR-10.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .core.store import load_tensors, save_tensors

IMAGENETTE_NAMES = {  # wnid -> readable name (Imagenette's ten classes)
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888605": "parachute",
}
IMAGENETTE_FOLDERS = ("imagenette2-320", "imagenette2", "imagenette2-160")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


def find_imagefolder(data_dir) -> tuple[Path, str] | None:
    """(root, name of its test split) of the first ImageFolder layout under data_dir, or None."""
    root = Path(data_dir).expanduser()
    for candidate in (root, *(root / name for name in IMAGENETTE_FOLDERS)):
        for test_split in ("val", "test"):
            if (candidate / "train").is_dir() and (candidate / test_split).is_dir():
                return candidate, test_split
    return None


def resolve_imagenette(data_dir, download: bool = True) -> tuple[Path, str]:
    """The ImageFolder under data_dir; if there is none, download Imagenette there (online), else a clear error."""
    if data_dir is None:
        raise ValueError(
            "the ImageNet subset needs DATA_DIR: a folder with train/<class>/ and val/<class>/ images "
            "(Imagenette's layout, or any ImageFolder subset of ImageNet); online, Imagenette is "
            "downloaded there"
        )
    found = find_imagefolder(data_dir)
    if found is None and download:
        _download_imagenette(Path(data_dir).expanduser())
        found = find_imagefolder(data_dir)
    if found is None:
        raise ValueError(
            f"no ImageFolder (train/<class>/ and val/<class>/ or test/<class>/) under "
            f"DATA_DIR={data_dir}; download Imagenette (https://github.com/fastai/imagenette) there "
            f"or point DATA_DIR at another ImageFolder subset"
        )
    return found


def _download_imagenette(root: Path) -> None:
    from torchvision.datasets import Imagenette

    try:
        for split in ("train", "val"):
            Imagenette(str(root), split=split, size="320px", download=split == "train")
    except Exception as err:  # offline, or a partial download
        raise ValueError(
            f"Imagenette is not in DATA_DIR={root} and could not be downloaded ({err}). Go online "
            f"once, or point DATA_DIR at a folder with train/<class>/ and val/<class>/ images"
        ) from err


def load_imagefolder(data_dir, resolution: int, cache_dir="cache", download: bool = True):
    """(name, classes, (train_x, train_y, test_x, test_y)) at resolution x resolution, decoded once and cached."""
    if not (isinstance(resolution, int) and 16 <= resolution <= 512):
        raise ValueError(
            f"data.resolution must be an int in [16, 512] pixels for an ImageFolder dataset (e.g. 64 "
            f"on a CPU, 224 as ImageNet); got {resolution!r}"
        )
    root, test_split = resolve_imagenette(data_dir, download)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    test_classes = sorted(p.name for p in (root / test_split).iterdir() if p.is_dir())
    if len(classes) < 2 or test_classes != classes:
        raise ValueError(
            f"{root}/train and {root}/{test_split} must hold the same class folders (at least 2); "
            f"found {classes} and {test_classes}"
        )
    key = hashlib.sha256(f"{root.resolve()}|{resolution}".encode()).hexdigest()[:12]
    cache_file = Path(cache_dir) / "data" / f"imagefolder-{resolution}px-{key}.safetensors" if cache_dir else None
    cached = load_tensors(cache_file) if cache_file else None
    if cached is None:
        cached = {}
        for split, out in (("train", "train"), (test_split, "test")):
            cached[f"{out}_x"], cached[f"{out}_y"] = _decode_split(root / split, classes, resolution)
        if cache_file:
            save_tensors(cache_file, cached)
    names = [IMAGENETTE_NAMES.get(c, c) for c in classes]
    name = f"{'Imagenette' if set(classes) <= set(IMAGENETTE_NAMES) else root.name} ({resolution} px)"
    return name, names, (cached["train_x"], cached["train_y"], cached["test_x"], cached["test_y"])


def _decode_split(folder: Path, classes: list, resolution: int):
    from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms.v2 import functional as F
    from tqdm.auto import tqdm

    images, labels = [], []
    for label, name in enumerate(tqdm(classes, desc=f"decode {folder.name}", leave=False)):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
            image = F.center_crop(F.resize(image, resolution, antialias=True), [resolution, resolution])
            images.append(image)
            labels.append(label)
    if not images:
        raise ValueError(f"no images ({sorted(IMAGE_SUFFIXES)}) under {folder}")
    return torch.stack(images).contiguous(), torch.tensor(labels, dtype=torch.int64)
