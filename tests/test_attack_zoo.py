"""Every image attack of the smoke zoo, trained once per test session into the session cache (the same units the
smoke notebooks then read): each reaches its stated ASR on the generated data (or the test states its weaker
regime), and the registry, the zoo and the smoke profile agree on which attacks exist."""

import pytest
import torch

from ebyd_utils import zoo
from ebyd_utils.attacks import ATTACKS
from ebyd_utils.config import IMAGE_ATTACKS
from ebyd_utils.train import predict

# Measured on the smoke zoo (10 epochs, seed 0, 1,500 generated training images, 2-core AMD EPYC Zen 4); each
# bound a little below what was reached: BadNets 1.00, Blend 1.00, Trojan 1.00, One-pixel 0.95, WaNet 0.96,
# Smooth 0.86-0.88, IAD 0.50-0.51, Nashville 1.00, BPP 0.71-0.73, Adap-Blend 1.00, Adap-Patch 1.00 (ranges: 1 and 2
# torch threads). SSBA implants weakly with its encoder at the smoke budget (3 epochs): 0.17 (2 threads) to 0.30
# (1 thread). Weaker regimes, stated with a bound of 0: SIG (0.00 at this scale, as before), LC (0.01-0.02:
# the generated classes are so separable that PGD at 8/255 makes no target image hard) and BadNets all-to-all
# (0.01: 150 poisoned images spread over ten class pairs). On CIFAR-10 at `quick` all but Adap-Blend implant.
SMOKE_MIN_ASR = {
    "badnets": 0.9,
    "blend": 0.9,
    "trojan": 0.9,
    "sig": 0.0,
    "onepixel": 0.8,
    "wanet": 0.8,
    "lc": 0.0,
    "smooth": 0.7,
    "iad": 0.4,
    "nashville": 0.9,
    "ssba": 0.1,
    "bpp": 0.6,
    "adap_blend": 0.8,
    "adap_patch": 0.8,
    "badnets-all2all": 0.0,
}


@pytest.fixture(scope="module")
def seed0_suspects(smoke, smoke_run):
    rows = zoo.zoo_table(smoke).query("role == 'suspect' and seed == 0")
    return {s.label: s for s in zoo.models(smoke_run, rows)}


def test_the_registry_holds_every_image_attack_and_the_smoke_zoo_lists_them(smoke):
    assert set(IMAGE_ATTACKS) == set(ATTACKS)
    assert set(SMOKE_MIN_ASR) == set(zoo.zoo_table(smoke)["attack"]) - {"clean"}


@pytest.mark.slow
def test_every_attack_reaches_its_stated_asr_on_smoke_data(seed0_suspects):
    reached = {name: round(s.record["ASR"], 3) for name, s in seed0_suspects.items() if s.attack is not None}
    low = {name: asr for name, asr in reached.items() if asr < SMOKE_MIN_ASR[name]}
    assert not low, f"below the stated smoke ASR: {low} (all: {reached})"
    assert all(s.record["CA"] > 0.9 for s in seed0_suspects.values())


@pytest.mark.slow
def test_iad_is_input_aware_another_images_trigger_does_not_fire(seed0_suspects, smoke_data):
    suspect = seed0_suspects["iad"]
    x01 = smoke_data.test_x[smoke_data.test_y != 0].float() / 255
    crossed = (suspect.attack.stamp(x01, x01.roll(1, 0)).clamp(0, 1) * 255).round().to(torch.uint8)
    assert (predict(suspect.model, crossed) == 0).float().mean() < suspect.record["ASR"] / 2
    assert suspect.attack.component_record["seconds"] > 0  # its generator is a unit of its own
