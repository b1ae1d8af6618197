"""Notebook 06's evaluation side: DER, the variants each method runs, the budgets the profile sets, and the
anchors' table. (The methods themselves: test_removal_methods.py; the notebook: test_notebooks.py.)"""

import pandas as pd
import pytest

from ebyd_utils.config import get_profile
from ebyd_utils.core.metrics import der
from ebyd_utils.experiments import removal


@pytest.mark.parametrize(
    "ca_before, ca_after, asr_before, asr_after, expected",
    [
        (0.90, 0.88, 1.00, 0.02, (0.98 - 0.02 + 1) / 2),  # the usual repair: 0.98
        (0.90, 0.92, 1.00, 0.00, 1.0),  # CA rose: its drop clips at 0
        (0.90, 0.90, 0.10, 0.50, 0.5),  # ASR rose: its drop clips at 0
        (0.90, 0.10, 1.00, 1.00, (0 - 0.80 + 1) / 2),  # CA destroyed, backdoor kept: 0.1
    ],
)
def test_der_matches_hand_computed_values(ca_before, ca_after, asr_before, asr_after, expected):
    assert der(ca_before, ca_after, asr_before, asr_after) == pytest.approx(expected)


def test_der_and_methods_refuse_bad_input():
    with pytest.raises(ValueError, match="fraction"):
        der(90.0, 88.0, 1.0, 0.0)  # percentages, not fractions
    with pytest.raises(ValueError, match="choose from"):
        removal.check_methods(("ft", "nad"))


def test_each_method_runs_plain_and_the_neuron_methods_also_guided():
    profile = get_profile("smoke")
    runs = removal.runs(profile, type("S", (), {"model": "suspect", "key": "k"})(), "exposed", "ek")
    variants = [(method, exposure) for method, exposure, *_ in runs]
    assert ("ft", "CUL") not in variants and len(variants) == 9
    guided = {m: g for m, e, g, *_ in runs if e == "CUL"}
    assert guided == {"fp": "exposed", "anp": "exposed", "rnp": "exposed", "nc_unlearning": None}
    nc_source = [src for m, e, g, gk, src, sk in runs if m == "nc_unlearning" and e == "CUL"]
    assert nc_source == ["exposed"]  # its trigger is recovered from the exposed model


def test_the_profile_sets_the_budgets_and_every_setting_enters_the_key():
    smoke, quick = get_profile("smoke"), get_profile("quick")
    assert removal.method_settings(smoke, "ft")["epochs"] == smoke.removal.finetune_epochs
    assert removal.method_settings(smoke, "fp")["finetune"]["epochs"] == smoke.removal.finetune_epochs
    assert removal.method_settings(smoke, "anp")["iterations"] == smoke.removal.anp_iterations
    assert removal.method_settings(smoke, "rnp") == removal.method_settings(quick, "rnp")
    assert removal.method_settings(smoke, "nc_unlearning") != removal.method_settings(quick, "nc_unlearning")


def test_the_anchors_table_holds_the_published_numbers_with_sources():
    anchors = removal.ANCHORS.set_index(["source", "defense"])
    bb = "BackdoorBench leaderboard"
    assert anchors.loc[(bb, "none"), ["CA", "ASR"]].tolist() == [91.32, 95.03]
    assert anchors.loc[(bb, "FP"), ["CA", "ASR"]].tolist() == [91.31, 57.13]
    rnp = [s for s in anchors.index.get_level_values(0) if s.startswith("RNP")][0]
    assert anchors.loc[(rnp, "RNP"), ["CA", "ASR"]].tolist() == [92.77, 1.72]
    assert removal.ANCHORS["url"].str.startswith("https://").all()


def test_the_summary_reads_the_clean_controls_cost_and_the_seed_spread():
    rows = pd.DataFrame(
        [
            {
                "attack": "badnets",
                "seed": s,
                "method": "fp",
                "exposure": e,
                "CA_before": 0.9,
                "CA": 0.88,
                "ASR": asr,
                "DER": d,
                "seconds": 1.0,
            }
            for s, e, asr, d in (
                (0, "none", 0.5, 0.74),
                (1, "none", 0.3, 0.84),
                (0, "CUL", 0.0, 0.99),
                (1, "CUL", 0.1, 0.94),
            )
        ]
        + [
            {"attack": "clean", "seed": 0, "method": "fp", "exposure": e, "CA_before": 0.9, "CA": ca, "seconds": 1.0}
            for e, ca in (("none", 0.85), ("CUL", 0.89))
        ]
    )
    summary = removal.removal_summary(rows).set_index("exposure")
    assert summary.loc["none", "DER_seed_min"] == pytest.approx(0.74)
    assert summary.loc["CUL", "clean_CA_lost"] == pytest.approx(0.01)
    (line,) = removal.removal_verdicts(summary.reset_index())
    assert line.startswith("FP: exposure improved removal")
