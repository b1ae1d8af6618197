"""Notebook 04's evaluation side on hand-built records: which label a run names, the summary and its verdicts.
(The methods themselves are measured in test_trigger_recovery.py; the whole flow runs in test_notebooks.py.)"""

import pandas as pd
import pytest
import torch

from ebyd_utils import pipeline as pl
from ebyd_utils.config import get_profile
from ebyd_utils.defenses import NeuralCleanseResult
from ebyd_utils.experiments import trigger_recovery as recovery


def _nc(norms, flagged=None, classes=None):
    k = len(norms)
    masks = torch.zeros(k, 1, 4, 4)
    return NeuralCleanseResult(
        classes or list(range(k)),
        masks,
        torch.zeros(k, 3, 4, 4),
        torch.tensor(norms),
        torch.zeros(k),
        torch.ones(k),
        flagged,
        0.0,
    )


def test_nc_names_its_flagged_label_else_its_smallest_mask_unflagged():
    assert recovery.named_label(_nc([5.0, 1.0, 9.0], flagged=1)) == (1, True)
    assert recovery.named_label(_nc([5.0, 2.0, 1.5])) == (2, False)
    assert recovery.named_label(_nc([3.0], classes=[7])) == (7, False)  # narrowed to one class


def test_every_inversion_setting_enters_the_key_and_the_profile_sets_the_budget():
    quick, smoke = get_profile("quick"), get_profile("smoke")
    assert recovery.method_settings(quick, "nc")["epochs"] == quick.recovery.nc_epochs
    assert recovery.method_settings(smoke, "bti")["generator_steps"] == smoke.recovery.bti_generator_steps
    assert recovery.method_settings(quick, "nc") != recovery.method_settings(smoke, "nc")
    table = pd.DataFrame(
        {
            "role": ["suspect", "suspect", "suspect", "reference"],
            "seed": [0, 0, 1, 1000],
            "attack": ["clean", "wanet", "clean", "clean"],
        }
    )
    smoke_rows = recovery.suspect_rows(get_profile("smoke", recovery=dict(attacks=("wanet",))), table)
    assert list(smoke_rows["seed"]) == [0, 0] and list(smoke_rows["attack"]) == ["clean", "wanet"]  # seed 0 only
    assert list(recovery.suspect_rows(quick, table)["seed"]) == [0, 0, 1]  # quick: every seed and attack
    with pytest.raises(ValueError, match="not in the zoo"):  # a typo in the filter is an error
        recovery.suspect_rows(smoke, table)


def _rows(method, exposure, seed, correct, asr, clean_flag=False):
    return [
        {
            "attack": "badnets",
            "seed": seed,
            "method": method,
            "exposure": exposure,
            "correct": c,
            "true_target": 0,
            "asr_on_suspect": a,
            "flagged": True,
            "seconds": 1.0,
        }
        for c, a in zip(correct, asr)
    ] + [
        {
            "attack": "clean",
            "seed": seed,
            "method": method,
            "exposure": exposure,
            "correct": False,
            "true_target": None,
            "asr_on_suspect": 0.5,
            "flagged": clean_flag,
            "seconds": 1.0,
        }
    ]


def test_summary_counts_named_targets_and_clean_flags_per_seed():
    table = pd.DataFrame(
        _rows("nc", "none", 0, [True, False], [0.9, 0.1], clean_flag=True)
        + _rows("nc", "CUL", 0, [True, True], [0.9, 0.7])
    )
    summary = recovery.recovery_summary(table).set_index("exposure")
    assert summary.loc["none", "correct"] == 0.5 and summary.loc["CUL", "correct"] == 1.0
    assert summary.loc["none", "asr_on_suspect"] == pytest.approx(0.5) and summary.loc["none", "clean_flagged"] == 1
    assert summary.loc["CUL", "n_backdoored"] == 2 and summary.loc["CUL", "clean_flagged"] == 0


@pytest.mark.parametrize(
    "named, asr, verdict",
    [
        ([0.5, 0.25], [0.0, 0.1], "improved in every seed"),
        ([-0.25, 0.0], [0.0, -0.5], "worse in every seed"),
        ([0.0, 0.0], [0.01, -0.02], "no change"),
        ([0.25, 0.25], [-0.8, -0.9], "mixed"),  # the target named more often by a trigger that no longer fires
    ],
)
def test_verdicts_are_stated_per_seed(named, asr, verdict):
    assert recovery._verdict(pd.Series(named), pd.Series(asr)).startswith(verdict)


def test_verdict_lines_compare_each_variant_with_the_plain_run():
    table = pd.DataFrame(
        _rows("nc", "none", 0, [False], [0.9])
        + _rows("nc", "CUL label", 0, [True], [0.95])
        + _rows("nc", "none", 1, [False], [0.8])
        + _rows("nc", "CUL label", 1, [True], [0.9])
    )
    lines = recovery.recovery_verdicts(recovery.recovery_summary(table))
    assert len(lines) == 1 and "'CUL label' vs none: improved in every seed" in lines[0]
    assert "0.00 [0.00, 0.00] -> 1.00 [1.00, 1.00]" in lines[0]


@pytest.mark.slow
def test_nc_is_narrowed_to_the_label_detection_read_never_to_the_true_target(smoke_run, badnets_suspect):
    # the defender's wall, by behaviour: a detection table naming label 7 (the true target is 0) must send
    # "CUL label" NC to class 7; swapping in the true target anywhere in the flow fails here
    profile = get_profile("smoke", recovery=dict(methods=("nc",), nc_epochs=2))
    run = smoke_run.replace(profile=profile)
    detections = pd.DataFrame(
        [{"model_id": badnets_suspect.model_id, "exposure": "CUL", "detected_label": 7, "flagged": False}]
    )
    detected = recovery.labels_from_detection(detections, [badnets_suspect])
    assert detected == [(7, False)]
    exposed, log = pl.expose(run, badnets_suspect)
    table = recovery.recovery_table(run, [badnets_suspect], [(exposed, log.attrs["key"])], detected, test_size=100)
    narrowed = table.set_index("exposure").loc["CUL label"]
    assert narrowed["recovered_label"] == 7 and not narrowed["correct"] and narrowed["flagged"] == False  # noqa: E712
    assert badnets_suspect.attack.target == 0


def test_a_narrowed_inversion_refuses_a_missing_label(smoke_run):
    with pytest.raises(ValueError, match="not a missing one"):
        recovery.invert(smoke_run, "nc", None, "key", classes=[None])
