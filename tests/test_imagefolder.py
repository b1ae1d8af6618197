"""The ImageNet subset's loader on a tiny generated ImageFolder (never labelled ImageNet), and the ResNet-18 with
the ImageNet stem."""

import pytest
import torch
from torchvision.io import write_png

from ebyd_utils import pipeline as pl
from ebyd_utils.config import DataConfig, get_profile
from ebyd_utils.data import load_data
from ebyd_utils.imagefolder import load_imagefolder
from ebyd_utils.models import build_model

CLASSES = ["n01440764", "n02102040", "n03888605"]  # three Imagenette wnids, so names are translated


def _write_folder(root, per_class=(40, 8), size=(40, 56)):
    gen = torch.Generator().manual_seed(0)
    for split, n in zip(("train", "val"), per_class):
        for k, wnid in enumerate(CLASSES):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                image = torch.randint(0, 60, (3, *size), dtype=torch.uint8, generator=gen) + 60 * k
                write_png(image, str(folder / f"{i}.png"))
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp("imagefolder"))


def test_imagefolder_is_resized_centre_cropped_labelled_and_cached(folder, tmp_path):
    name, classes, (train_x, train_y, test_x, test_y) = load_imagefolder(folder, 32, tmp_path, download=False)
    assert classes == ["tench", "English springer", "parachute"] and name == "Imagenette (32 px)"
    assert train_x.shape == (120, 3, 32, 32) and test_x.shape == (24, 3, 32, 32) and train_x.dtype == torch.uint8
    assert torch.equal(torch.bincount(train_y), torch.tensor([40, 40, 40]))
    # class k's pixels were drawn from [60k, 60k + 60): resizing keeps each image in its class's range
    for k in range(3):
        assert train_x[train_y == k].float().mean().item() == pytest.approx(60 * k + 30, abs=3)
    assert len(list((tmp_path / "data").glob("imagefolder-32px-*.safetensors"))) == 1
    _, _, again = load_imagefolder(folder, 32, tmp_path, download=False)  # from the cache, identical
    assert torch.equal(again[0], train_x)


def test_missing_or_bad_imagefolder_says_what_to_do(tmp_path, folder):
    with pytest.raises(ValueError, match="DATA_DIR"):
        load_imagefolder(tmp_path / "nowhere", 32, tmp_path, download=False)
    with pytest.raises(ValueError, match="DATA_DIR"):
        load_data(DataConfig(dataset="imagenette", resolution=32), data_dir=None)
    with pytest.raises(ValueError, match="resolution"):
        load_imagefolder(folder, 0, tmp_path, download=False)
    with pytest.raises(ValueError, match="resolution"):
        load_data(DataConfig(dataset="cifar10", resolution=64), data_dir=folder)


def test_a_backdoor_trains_on_the_imagefolder_with_the_imagenet_stem(folder, tmp_path):
    profile = get_profile(
        "smoke",
        data=dict(dataset="imagenette", resolution=48, defense_size=9, probe_size=9),
        train=dict(model="resnet18_imagenet", epochs=2, batch_size=32, lr=0.05),
    )
    run = pl.setup(profile, folder, "cpu", tmp_path, progress=False)
    data = run.data
    assert data.train_x.shape[1:] == (3, 48, 48) and data.num_classes == 3
    suspect = pl.train_suspect(run, "badnets", seed=0, attack_params={"size": 5})
    assert set(suspect.record) >= {"CA", "ASR", "RA"} and suspect.record["n_poisoned"] == round(0.1 * 102)


def test_resnet18_imagenet_stem_downsamples_by_four_before_the_blocks():
    model = build_model("resnet18_imagenet", 7)
    x = torch.rand(2, 3, 64, 64)
    assert model.stem(model.normalize(x)).shape == (2, 64, 16, 16)
    assert model(x).shape == (2, 7)
    with pytest.raises(ValueError, match="stem"):
        from ebyd_utils.models import ResNet18

        ResNet18(10, stem="tiny")
