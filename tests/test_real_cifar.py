"""The effect on the real CIFAR-10 copy, when present (CI extracts it into data/): a BadNets model and a clean
control trained by the quick recipe, exposed by CUL.

Two scales. `subset` (what `make test` runs, a few minutes on 2 cores): the quick recipe on 10,000 of the 50,000
training images, evaluated on 2,000 test images; the backdoor is learned and exposed as at full size, the clean
accuracy is lower (about 0.5 after 4 epochs). `full` (marked `long`, `make test-long`; ~10 min on a 2-core CPU
without bf16): the quick profile as the notebooks run it, held to the CA its committed results show.
"""

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

# the smallest clean accuracy each scale must reach. full: the quick recipe's (results/01_attacks.csv: 0.82 on Zen 4
# in bf16; 0.80-0.81 over 6 models in fp32 on a Zen 3). subset: measured 0.50-0.59 over seeds 0-2, both models, on a
# 2-core Zen 3 in fp32 (ASR >= 0.999; ~210 s a model there with another job beside it); bound = the smallest less
# 0.1, as another CPU's bits move a 4-epoch model by a few points
SCALES = {
    "subset": dict(data=dict(train_subset=10_000, test_subset=2_000), min_ca=0.40),
    "full": dict(data=dict(), min_ca=0.78),
}


@pytest.fixture(scope="module", params=["subset", pytest.param("full", marks=pytest.mark.long)])
def real_run(request):
    scale = SCALES[request.param]
    profile = get_profile("quick", data=scale["data"])
    run = pl.setup(profile, DATA_DIR, "cpu", REPO / "cache", monitor_size=2000, progress=False)
    out = {}
    for attack in (None, "badnets"):
        suspect = pl.train_suspect(run, attack, seed=0)
        _, log = pl.expose(run, suspect)
        out[suspect.label] = (suspect, log)
    return run.data, scale["min_ca"], out


def test_the_quick_recipe_learns_cifar_and_the_backdoor(real_run):
    data, min_ca, out = real_run
    assert data.name in ("CIFAR-10 (JPEG copy)", "CIFAR-10")
    suspect, _ = out["badnets"]
    assert suspect.record["CA"] >= min_ca and suspect.record["ASR"] >= 0.99, suspect.record
    assert out["clean"][0].record["CA"] >= min_ca, out["clean"][0].record


def test_cul_exposes_the_cifar_backdoor_against_a_clean_control(real_run):
    _, _, out = real_run
    _, log = out["badnets"]
    stop = log[log.epoch == log.attrs["stop_epoch"]].iloc[0]
    assert log.attrs["collapsed"] and stop["CA"] <= 0.3 and stop["ASR"] >= 0.9
    shares = shares_at_stop(log)
    clean_shares = shares_at_stop(out["clean"][1])
    assert int(shares.argmax()) == 0  # most clean probe images now go to the target
    # well above the clean control's largest drift (measured at subset, seeds 0-2: 0.50-0.70 against 0.21-0.24)
    assert shares[0] >= clean_shares.max() + 0.1
