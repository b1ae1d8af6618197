"""The effect on the real CIFAR-10 copy, when present (CI extracts it into data/): one quick-profile BadNets
model and a clean control, full quick recipe (about 2 minutes each on 2 CPU cores), exposed by CUL."""

import os
from pathlib import Path

import pytest

from ebyd_utils import pipeline as pl
from ebyd_utils.config import get_profile
from ebyd_utils.defenses import shares_at_stop

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("EBYD_DATA_DIR", REPO / "data"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATA_DIR / "cifar10-jpg" / "train").is_dir() and not (DATA_DIR / "train").is_dir(),
        reason=f"real CIFAR-10 not found in {DATA_DIR} (extract cifar10-jpg.tar.gz there, or set EBYD_DATA_DIR)",
    ),
]


@pytest.fixture(scope="module")
def quick_run():
    profile = get_profile("quick")
    run = pl.setup(profile, DATA_DIR, "cpu", REPO / "cache", monitor_size=2000, progress=False)
    data = run.data
    out = {}
    for attack in (None, "badnets"):
        suspect = pl.train_suspect(run, attack, seed=0)
        _, log = pl.expose(run, suspect)
        out[suspect.label] = (suspect, log)
    return profile, data, out


def test_quick_model_learns_cifar_and_the_backdoor(quick_run):
    _, data, out = quick_run
    assert data.name == "CIFAR-10 (JPEG copy)" or data.name == "CIFAR-10"
    suspect, _ = out["badnets"]
    assert suspect.record["CA"] >= 0.78 and suspect.record["ASR"] >= 0.99
    assert out["clean"][0].record["CA"] >= 0.78


def test_cul_exposes_the_cifar_backdoor_against_a_clean_control(quick_run):
    profile, _, out = quick_run
    _, log = out["badnets"]
    stop = log[log.epoch == log.attrs["stop_epoch"]].iloc[0]
    assert log.attrs["collapsed"] and stop["CA"] <= 0.3 and stop["ASR"] >= 0.9
    shares = shares_at_stop(log)
    clean_shares = shares_at_stop(out["clean"][1])
    assert int(shares.argmax()) == 0  # most clean probe images now go to the target
    assert shares[0] >= clean_shares.max() + 0.1  # well above the clean control's largest drift
