"""Every image attack at the smoke profile's recipe, trained once per test session into the session cache (the
smoke notebooks read the same units for the attacks of their smaller zoo): each reaches its stated ASR on the
generated data (or the test states its weaker regime), and the registry and this test agree on which attacks exist."""

import pytest
import torch

from ebyd_utils import zoo
from ebyd_utils.attacks import ATTACKS
from ebyd_utils.config import IMAGE_ATTACKS
from ebyd_utils.train import predict

# What each attack reaches on the smoke zoo (10 epochs, seed 0, 1,500 generated training images), on the CPUs
# measured: AMD EPYC Zen 4 with bf16 (1 and 2 threads) | Zen 3 in fp32 (2 threads). Each bound sits at least 0.1
# below the lowest value seen: BadNets, Blend, Trojan, Nashville, Adap-Blend, Adap-Patch 1.00 | 1.00; One-pixel
# 0.95 | 0.94; WaNet 0.96 | 0.97; Smooth 0.86-0.88 | 0.87; BPP 0.71-0.73 | 0.70; SSBA 0.17-0.30 | 0.22.
# Not bounded here -- their smoke regime is weak or depends on the CPU, so a bound would either be 0 (a test that
# cannot fail) or fail somewhere: IAD (0.50 on Zen 4, 0.28 on an Intel Xeon, 0.03 on Zen 3: its generator's budget
# at smoke is seconds), SIG (0.00: a clean-label blend on images this separable), LC (0.01: PGD at 8/255 makes no
# generated image hard) and BadNets all-to-all (0.01-0.08: 150 poisoned images over ten class pairs). Their poisoning
# is tested in test_attacks*.py; on CIFAR-10 at `quick` all but Adap-Blend implant (notebook 01).
SMOKE_MIN_ASR = {
    "badnets": 0.9,
    "blend": 0.9,
    "trojan": 0.9,
    "onepixel": 0.8,
    "wanet": 0.8,
    "smooth": 0.7,
    "nashville": 0.9,
    "ssba": 0.07,
    "bpp": 0.6,
    "adap_blend": 0.9,
    "adap_patch": 0.9,
}
WEAK_AT_SMOKE = ("iad", "sig", "lc", "badnets-all2all")


@pytest.fixture(scope="module")
def seed0_suspects(smoke_run, every_attack_table):
    rows = every_attack_table.query("role == 'suspect' and seed == 0")
    return {s.label: s for s in zoo.models(smoke_run, rows)}


def test_the_registry_holds_every_image_attack_and_this_test_bounds_each(smoke, every_attack_table):
    assert set(IMAGE_ATTACKS) == set(ATTACKS)
    assert set(SMOKE_MIN_ASR) | set(WEAK_AT_SMOKE) == set(every_attack_table["attack"]) - {"clean"}
    # the smoke zoo itself (what the notebooks read) is a part of it, and holds the attacks the claims read at 2 seeds
    smoke_table = zoo.zoo_table(smoke)
    assert set(smoke_table["attack"]) <= set(every_attack_table["attack"])
    assert set(smoke.zoo.attacks) <= set(smoke_table.query("seed == 1")["attack"])


@pytest.mark.slow
def test_every_attack_reaches_its_stated_asr_on_smoke_data(seed0_suspects):
    reached = {name: round(s.record["ASR"], 3) for name, s in seed0_suspects.items() if s.attack is not None}
    low = {name: asr for name, asr in reached.items() if name in SMOKE_MIN_ASR and asr < SMOKE_MIN_ASR[name]}
    assert not low, f"below the stated smoke ASR: {low} (all: {reached})"
    assert all(s.record["CA"] > 0.9 for s in seed0_suspects.values())


@pytest.mark.slow
def test_iad_is_input_aware_another_images_trigger_does_not_fire(seed0_suspects, smoke_data):
    suspect = seed0_suspects["iad"]
    if suspect.record["ASR"] < 0.2:  # the property needs a backdoor that fires; see WEAK_AT_SMOKE
        pytest.skip(f"IAD did not implant at smoke on this CPU (ASR {suspect.record['ASR']:.2f}; 0.50 on Zen 4)")
    x01 = smoke_data.test_x[smoke_data.test_y != 0].float() / 255
    crossed = (suspect.attack.stamp(x01, x01.roll(1, 0)).clamp(0, 1) * 255).round().to(torch.uint8)
    assert (predict(suspect.model, crossed) == 0).float().mean() < suspect.record["ASR"] / 2
    assert suspect.attack.component_record["seconds"] > 0  # its generator is a unit of its own
