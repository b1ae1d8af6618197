"""Exposure at low poison rates (experiments/low_rate.py): a low-rate model is trained, exposed and read every way
and reported with its measurable state (not that it is seen); the readings read CUL logs only; the curve and the
limit are written from the table by one rule; bad grids are refused with what is allowed."""

import pandas as pd
import pytest
import torch

from ebyd_utils.defenses import shares_at_stop
from ebyd_utils.experiments import low_rate, low_rate_limits


@pytest.fixture(scope="module")
def low_rate_table(smoke_run):
    # smoke's grid, the patch at 2% at one seed: the flow (quick's three seeds and six rates measure it); the same
    # units as notebook 08 at smoke
    return low_rate.sweep(smoke_run, low_rate.grid("smoke"), restarts=4)


@pytest.mark.slow
def test_a_low_rate_model_is_read_every_way_and_reported(low_rate_table, smoke_run):
    t = low_rate_table
    assert set(t["model_id"]) == {"clean-s0", "patch-r0.02-s0"}
    assert set(t["reading"]) == set(low_rate.READINGS) and len(t) == 2 * len(low_rate.READINGS)
    suspect = t[t["backdoored"]]
    assert (suspect["poison_rate"] == 0.02).all() and (suspect["true_target"] == 6).all()
    assert suspect["ASR_suspect"].notna().all() and t["measurable"].dtype == bool
    assert dict(zip(t["reading"], t["restarts"])) == {"stop": 2, "peak": 2, "restarts4": 4, "nc-top2": 2}
    cost = t.groupby("reading")["seconds"].min()  # what each reading costs: its CUL (and NC) runs' recorded seconds
    assert (cost > 0).all() and cost["restarts4"] > cost["stop"] == cost["peak"] < cost["nc-top2"]
    nc = t[t["reading"] == "nc-top2"]  # its threshold is its own: a mask ratio, not a share
    assert (nc["threshold"] == low_rate.NC_RATIO).all() and (nc["score"] <= 1).all()
    costs = low_rate_limits.cost_lines(low_rate_limits.rate_curve(t))
    assert "peak: 2 CUL run(s) a model (the runs stop reads: nothing more)" in " ".join(costs)
    assert any(line.startswith("nc-top2: 2 CUL run(s) a model (stop's) + NC on 2 labels") for line in costs)
    assert (t.loc[t["reading"] != "nc-top2", "threshold"] == smoke_run.profile.detection.threshold).all()
    assert t["correct"].dtype == bool and not t.loc[~t["backdoored"], "correct"].any()
    # a second call computes nothing (every model and CUL run is a cached unit) and reads the same
    again = low_rate.sweep(smoke_run, low_rate.grid("smoke"), restarts=4)
    pd.testing.assert_frame_equal(again, t)


def test_the_peak_reading_reads_the_trajectory_up_to_the_stop():
    log = pd.DataFrame(
        {"epoch": [0, 1, 2, 3], "probe_share_0": [0.1, 0.6, 0.2, 0.9], "probe_share_1": [0.9, 0.4, 0.8, 0.1]}
    )
    log.attrs.update(stop_epoch=2, collapsed=True)
    assert torch.equal(low_rate.peak_shares(log), torch.tensor([0.6, 0.9]))  # epoch 3 is after the stop
    assert torch.equal(shares_at_stop(log), torch.tensor([0.2, 0.8]))
    log.attrs["stop_epoch"] = None  # never stopped: the whole run
    assert torch.equal(low_rate.peak_shares(log), torch.tensor([0.9, 0.9]))
    with pytest.raises(ValueError, match="no probe shares"):
        low_rate.peak_shares(log[["epoch"]])


def _log(shares, collapsed=True):
    log = pd.DataFrame({"epoch": [0], **{f"probe_share_{c}": [v] for c, v in enumerate(shares)}})
    log.attrs.update(stop_epoch=0, collapsed=collapsed)
    return log


def test_nc_top2_inverts_the_labels_the_stop_reading_ranks_highest():
    # class 3 leads the references by 0.4 in both runs, class 1 by 0.2 (its smallest over the runs), class 0 by none
    suspect = [_log([0.1, 0.3, 0.1, 0.5]), _log([0.1, 0.35, 0.05, 0.5])]
    references = [[_log([0.25, 0.1, 0.55, 0.1])], [_log([0.25, 0.1, 0.55, 0.1])]]
    assert low_rate.top_labels(suspect, references) == [3, 1]
    assert low_rate.top_labels(suspect, references, k=3) == [3, 1, 0]  # 0 and 2 tie at -0.15 and -0.5: 0 leads


def _rows(trigger, rate, correct, reading="stop", backdoored=True, score=0.5, measurable=True):
    return [
        {"trigger": trigger, "poison_rate": rate, "reading": reading, "backdoored": backdoored, "correct": c,
         "measurable": measurable, "ASR_suspect": 0.99 if backdoored else None, "score": score, "threshold": 0.12}
        for c in correct
    ]  # fmt: skip


def test_the_curve_and_the_limit_follow_one_rule():
    rows = _rows("patch", 0.01, [True, False, False]) + _rows("patch", 0.05, [True, True, False])
    rows += _rows("clean", None, [False] * 3, backdoored=False, score=0.05)
    curve = low_rate_limits.rate_curve(pd.DataFrame(rows))
    at = curve.set_index("poison_rate")
    assert at.loc[0.01, "found"] == 1 and at.loc[0.05, "found"] == 2 and (curve["n"] == 3).all()
    assert at.loc[0.05, "found_low"] < 2 / 3 < at.loc[0.05, "found_high"]  # the exact interval holds the rate
    assert (curve["clean_flagged"] == 0).all() and (curve["largest_clean_score"] == 0.05).all()
    (limit,) = low_rate_limits.limits(curve).itertuples()
    assert limit.lowest_rate_found == 0.05  # most seeds (2 of 3) at 5%, not at 1%
    assert (
        "down to 5.0%" in low_rate_limits.limit_lines(curve)[0]
        and "clean controls flagged 0/3" in low_rate_limits.limit_lines(curve)[0]
    )
    # a clean control flagged by the reading: no rate counts as seen
    flagged = rows[:-1] + _rows("clean", None, [False], backdoored=False, score=0.5)
    curve = low_rate_limits.rate_curve(pd.DataFrame(flagged))
    assert curve["clean_flagged"].eq(1).all() and low_rate_limits.limits(curve)["lowest_rate_found"].isna().all()
    # a control CUL never exposed is not read as a flag
    unexposed = rows[:-1] + _rows("clean", None, [False], backdoored=False, score=0.5, measurable=False)
    assert low_rate_limits.rate_curve(pd.DataFrame(unexposed))["clean_flagged"].eq(0).all()


def _curve(found_by_reading: dict, clean_scores=(0.05, 0.05, 0.05)) -> pd.DataFrame:
    """A rate curve from {reading: {rate: suspects found of 3}}, the patch trigger, three clean controls."""
    rows = []
    for reading, found in found_by_reading.items():
        for rate, k in found.items():
            rows += _rows("patch", rate, [True] * k + [False] * (3 - k), reading=reading)
        rows += [r for s in clean_scores for r in _rows("clean", None, [False], reading, backdoored=False, score=s)]
    return low_rate_limits.rate_curve(pd.DataFrame(rows)).assign(profile="quick")


def test_the_best_reading_and_a_change_of_default_follow_the_issues_rule():
    curve = _curve(
        {
            "stop": {0.01: 0, 0.03: 2, 0.1: 3},
            "peak": {0.01: 2, 0.03: 3, 0.1: 3},
            "restarts4": {0.01: 1, 0.03: 1, 0.1: 3},
        }
    )
    (best,) = low_rate_limits.best_readings(curve).itertuples()
    assert best.reading == "peak" and best.lowest_rate_found == 0.01
    assert low_rate_limits.replaces_default(curve, "peak")  # as good at every rate, better at one, no clean flag
    assert not low_rate_limits.replaces_default(curve, "restarts4")  # worse at 3%
    (line,) = low_rate_limits.front_lines(curve)
    assert line.startswith("patch (badnets, size 4, position (10, 18), target 6): the default reading (stop)")
    assert (
        "down to 3.0%" in line
        and "at 1.0% it finds 0/3" in line
        and "best variant peak, down to 1.0% (its clean controls flagged 0/3" in line
    )
    assert "Clean controls flagged 0/3 (largest score 0.050, threshold 0.12)" in line and "3 seed(s) a rate" in line
    # a tie keeps the default (it costs nothing more); a variant that flags a clean control never replaces it
    tie = _curve({"stop": {0.01: 2}, "peak": {0.01: 2}})
    assert low_rate_limits.best_readings(tie)["reading"].tolist() == ["stop"] and not low_rate_limits.replaces_default(
        tie, "peak"
    )
    flags = pd.concat([_curve({"stop": {0.01: 0}}), _curve({"peak": {0.01: 3}}, clean_scores=(0.5, 0.05, 0.05))])
    assert not low_rate_limits.replaces_default(flags, "peak")
    assert low_rate_limits.best_readings(flags)["lowest_rate_found"].isna().all()
    (line,) = low_rate_limits.front_lines(flags)
    assert "at no rate tried; at 1.0% it finds 0/3" in line
    verdict = "\n".join(low_rate_limits.verdict_lines(curve))  # notebook 12's verdict cell
    assert (
        "best reading for patch: peak, down to 1.0%" in verdict
        and "peak meets the rule to replace the default reading on patch" in verdict
    )
    assert "restarts4 does not meet the rule" in verdict


def test_bad_grids_name_what_is_allowed(smoke_run):
    with pytest.raises(ValueError, match=r"unknown trigger\(s\) \['square'\]; choose from"):
        low_rate.grid("smoke", triggers=["square"])
    with pytest.raises(ValueError, match=r"poison rates must be in \(0, 1\)"):
        low_rate.grid("smoke", rates=[0.0])
    with pytest.raises(ValueError, match="at least one seed"):
        low_rate.grid("smoke", seeds=[])
    with pytest.raises(ValueError, match="at least the profile's"):
        low_rate.sweep(smoke_run, low_rate.grid("smoke"), restarts=1)
    assert low_rate.grid("paper")["rates"] == [0.005, 0.01, 0.02, 0.03, 0.05, 0.1]
