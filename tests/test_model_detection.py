"""Model detection (notebook 05): the detectors' readings, the measures a detector is judged by, and the
claim on a smoke zoo. (MM-BD itself: test_mm_bd.py; the notebook: test_notebooks.py.)"""

import inspect

import numpy as np
import pandas as pd
import pytest
import torch

from ebyd_utils import zoo
from ebyd_utils.config import get_profile
from ebyd_utils.core import metrics as dm
from ebyd_utils.defenses import NeuralCleanseResult, share_variance
from ebyd_utils.experiments import model_detection


def test_the_official_variance_rule_on_hand_computed_shares():
    uniform = share_variance(torch.full((10,), 0.1))
    one_class = share_variance(torch.eye(10)[3])
    assert uniform.score == pytest.approx(0.0) and not uniform.flagged
    assert one_class.score == pytest.approx(0.09) and one_class.flagged and one_class.label == 3  # (0.81+9*0.01)/10
    half = share_variance([0.5, 0.5] + [0.0] * 8)  # mean 0.1: (2 * 0.16 + 8 * 0.01) / 10 = 0.04
    assert half.score == pytest.approx(0.04)
    with pytest.raises(ValueError, match="summing to 1"):
        share_variance([0.5, 0.2])
    with pytest.raises(ValueError, match="threshold"):
        share_variance(torch.full((10,), 0.1), threshold=2)


def test_detectors_take_nothing_about_the_attack():
    for fn in (share_variance, model_detection.nc_reading):
        names = " ".join(inspect.signature(fn).parameters)
        assert not any(word in names for word in ("trigger", "target", "asr"))
    with pytest.raises(ValueError, match="choose from"):
        model_detection.check_detectors(("exposure", "strip"))


def test_nc_model_score_is_the_largest_index_of_a_small_mask_class():
    norms = torch.tensor([10.0, 11.0, 9.0, 12.0, 1.0, 10.5, 30.0])
    from ebyd_utils.defenses import anomaly_indices

    anomaly = anomaly_indices(norms)
    result = NeuralCleanseResult(
        list(range(7)), torch.zeros(7, 1, 2, 2), torch.zeros(7, 3, 2, 2), norms, anomaly, torch.ones(7), 4, 0.0
    )
    score, flagged, label = model_detection.nc_reading(result)
    assert label == 4 and flagged and score == pytest.approx(float(anomaly[4]))
    assert score < float(anomaly[6])  # class 6's large norm is an outlier too, on the wrong side: not counted


def test_auc_tpr_at_fpr_and_rule_rates_on_a_hand_example():
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.9, 0.4, 0.8, 0.95, 0.99]
    assert dm.roc_auc(labels, scores) == pytest.approx(14 / 16)  # backdoored > clean pairs: 3 + 3 + 4 + 4
    assert dm.tpr_at_fpr(labels, scores, 0.05) == pytest.approx(0.5)  # above 0.9, the one false alarm: 2 of 4
    assert dm.tpr_at_fpr(labels, scores, 0.25) == pytest.approx(1.0)
    assert dm.rule_rates(labels, [s > 0.5 for s in scores]) == {"rule_tpr": 0.75, "rule_fpr": 0.25}
    with pytest.raises(ValueError, match="both"):
        dm.roc_auc([1, 1], [0.1, 0.2])


def test_the_bootstrap_interval_contains_the_estimate_and_narrows_with_more_models():
    rng = np.random.default_rng(0)

    def zoo_of(n):
        labels = np.r_[np.zeros(n), np.ones(n)].astype(int)
        return labels, np.r_[rng.normal(0, 1, n), rng.normal(1, 1, n)]

    widths = []
    for n in (8, 200):
        labels, scores = zoo_of(n)
        low, high = dm.bootstrap_auc(labels, scores, resamples=1000, seed=0)
        assert low <= dm.roc_auc(labels, scores) <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3


def test_calibration_never_sees_the_scored_model():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(10), np.ones(10)].astype(int)
    scores = np.r_[rng.normal(0, 1, 10), rng.normal(2, 1, 10)]
    p = dm.calibrated_probabilities(labels, scores)
    flipped = labels.copy()
    flipped[3] = 1  # lie about model 3's truth
    q = dm.calibrated_probabilities(flipped, scores)
    assert q[3] == pytest.approx(p[3], abs=1e-12)  # its own probability cannot change
    assert not np.allclose(np.delete(q, 3), np.delete(p, 3))  # the others' fits saw the lie
    assert p[labels == 1].mean() > p[labels == 0].mean()
    cal = dm.calibration_scores(labels, p)
    assert 0 < cal["brier"] < 0.25 and cal["cross_entropy"] < np.log(2)  # better than a coin


def test_verdicts_state_the_direction_and_the_clean_flags():
    metrics = pd.DataFrame(
        [
            {
                "detector": "nc",
                "exposure": e,
                "roc_auc": a,
                "auc_low": lo,
                "auc_high": hi,
                "rule_tpr": t,
                "rule_fpr": f,
                "n_backdoored": 6,
                "n_clean": 3,
            }
            for e, a, lo, hi, t, f in (("none", 0.3, 0.1, 0.5, 0.3, 1.0), ("CUL", 1.0, 0.9, 1.0, 0.5, 0.0))
        ]
    )
    (line,) = model_detection.verdicts(metrics)
    assert line.startswith("nc: exposure helped") and "100% -> 0% of clean" in line


def test_the_scored_zoo_is_the_profiles_seeds_plus_every_drawn_model():
    smoke = get_profile("smoke")
    rows = model_detection.zoo_rows(smoke, zoo.zoo_table(smoke))
    assert set(rows["role"]) == {"suspect", "drawn"} and set(rows.loc[rows["role"] == "suspect", "seed"]) == {0}
    assert (rows["attack"] == "clean").sum() == 1 + smoke.zoo.extra_clean


@pytest.mark.slow
def test_exposure_raises_the_exposure_scores_auc_on_a_smoke_zoo(smoke_run, references):
    run = smoke_run.replace(profile=get_profile("smoke", model_detection=dict(detectors=("exposure", "unlearning"))))
    rows = model_detection.zoo_rows(run.profile, zoo.zoo_table(run.profile))
    suspects = zoo.models(run, rows)
    logs = zoo.exposures(run, suspects)
    refs, ref_logs = references
    scores = model_detection.model_scores(run, rows, suspects, logs, refs, ref_logs)
    auc = {
        e: dm.roc_auc(g["backdoored"].astype(int), g["score"])
        for e, g in scores[scores["detector"] == "exposure"].groupby("exposure")
    }
    # measured on this zoo of 4 backdoored (one of them all-to-all) + 2 drawn and 3 clean models: 0.89 vs 0.50 (Zen 4,
    # bf16), 0.83 vs 0.67 (Intel Xeon), 0.72 vs 0.67 (the CI runner). The size of the lift is test_claims.py's
    # (a zoo of attacks CUL exposes); here the order only
    assert auc["CUL"] > auc["none"], auc
    assert len(scores) == len(rows) * 2 * 2 and scores["seconds"].notna().all()
