"""The paper's effect on tiny generated data: a backdoor is learned, CUL exposes it, detection names it."""

import pytest
import torch

from ebyd_utils import pipeline as pl
from ebyd_utils.defenses import detect_label, shares_at_stop
from ebyd_utils.experiments import label_detection
from ebyd_utils.train import class_shares


def _reference_shares(reference_logs):
    return [[shares_at_stop(lg) for lg in logs] for logs in reference_logs]


def test_backdoored_model_learns_the_trigger_and_the_task(badnets_suspect, clean_suspect):
    assert badnets_suspect.record["ASR"] >= 0.9
    assert badnets_suspect.record["CA"] >= 0.6  # chance is 0.1
    assert clean_suspect.record["CA"] >= 0.6
    assert badnets_suspect.record["n_poisoned"] == round(0.1 * badnets_suspect.record["n_train"])


def test_cul_exposes_the_backdoor_and_names_its_target(smoke, smoke_run, smoke_data, badnets_suspect, references):
    _, ref_logs = references
    logs = pl.expose_restarts(smoke_run, badnets_suspect)
    log = logs[0]  # the restart with the evaluation monitor
    stop = log[log.epoch == log.attrs["stop_epoch"]].iloc[0]
    assert log.attrs["collapsed"]
    assert stop["CA"] < 0.25 and stop["ASR"] >= 0.8  # chance is 0.1; measured 0.15-0.21 at the stop
    assert stop["defense_acc"] <= smoke.cul.stop_acc
    detection = detect_label(
        [shares_at_stop(lg) for lg in logs], _reference_shares(ref_logs), smoke.detection.threshold
    )
    assert detection.flagged and detection.label == badnets_suspect.attack.target
    # the suspect itself was not modified by the exposure
    assert pl.evaluate(badnets_suspect.model, smoke_data)["CA"] == badnets_suspect.record["CA"]


def test_clean_model_gets_no_confident_flag(smoke, smoke_run, smoke_data, clean_suspect, references):
    refs, ref_logs = references
    logs = pl.expose_restarts(smoke_run, clean_suspect)
    detection = detect_label(
        [shares_at_stop(lg) for lg in logs], _reference_shares(ref_logs), smoke.detection.threshold
    )
    assert not detection.flagged and detection.verdict == "not flagged (low confidence)"  # never "clean"
    plain = detect_label(
        class_shares(clean_suspect.model, smoke_data.probe_x, 10),
        [class_shares(r.model, smoke_data.probe_x, 10) for r in refs],
        smoke.detection.threshold,
    )
    assert not plain.flagged


def test_cul_gives_the_same_weights_and_stop_with_and_without_its_monitor(smoke_run, badnets_suspect):
    # the defender's wall, by behaviour: the evaluation monitor carries the attack (it logs test CA / ASR each
    # epoch); it may watch CUL, never steer it
    watched, watched_log = pl.expose(smoke_run, badnets_suspect)  # the zoo's restart 0: monitor on
    blind, blind_log = pl.expose(smoke_run, badnets_suspect, monitor_size=0)
    assert watched_log.attrs["key"] != blind_log.attrs["key"]  # two units, computed apart
    assert "ASR" in watched_log and "ASR" not in blind_log
    assert watched_log.attrs["stop_epoch"] == blind_log.attrs["stop_epoch"] is not None
    a, b = watched.state_dict(), blind.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    shared = [c for c in blind_log.columns]
    assert watched_log[shared].equals(blind_log)  # the defender's own readings, epoch by epoch


def test_cul_stop_rule_and_log_are_defender_side(smoke, smoke_data, badnets_suspect):
    from ebyd_utils.expose import clean_unlearn

    exposed, log = clean_unlearn(
        badnets_suspect.model,
        smoke_data.defense_x,
        smoke_data.defense_y,
        smoke.cul,
        10,
        probe_x=smoke_data.probe_x,
        progress=False,
    )
    assert "ASR" not in log.columns and "CA" not in log.columns  # no evaluation metric without a monitor
    stops = log.index[log.defense_acc <= smoke.cul.stop_acc]
    assert len(stops) == 1 and stops[0] == len(log) - 1  # stopped at the first collapse
    assert abs(sum(log.filter(like="probe_share_").iloc[-1]) - 1) < 1e-5


def test_detection_needs_a_label_in_every_restart():
    wandering = [torch.eye(10)[3], torch.eye(10)[7]]  # two restarts drift onto two different classes
    steady = [torch.eye(10)[2], 0.8 * torch.eye(10)[2] + 0.02]
    assert detect_label(wandering, None, 0.1).score < 0  # no class holds in both runs
    det = detect_label(steady, None, 0.1)
    assert det.flagged and det.label == 2 and abs(det.score - 0.72) < 1e-5


def test_detection_without_references_is_stated_not_silent():
    shares = torch.tensor([0.5] + [0.5 / 9] * 9)
    det = detect_label(shares, None, threshold=0.1)
    assert det.flagged and det.label == 0 and abs(det.score - 0.4) < 1e-6
    weak = detect_label(torch.full((10,), 0.1), None, threshold=0.1, exposed=False)
    assert weak.verdict == "not exposed" and not weak.flagged


def test_detection_summary_counts_right_targets_false_flags_and_auc():
    import pandas as pd

    table = pd.DataFrame(
        {
            "exposure": ["CUL"] * 5,
            "backdoored": [True, True, False, False, True],
            "true_target": [0, 0, None, None, None],  # the last: all-to-all, no single target
            "correct": [True, False, False, False, False],
            "flagged": [True, True, False, True, True],
            "score": [0.5, 0.3, 0.1, 0.4, 0.6],
        }
    )
    row = label_detection.detection_summary(table).loc["CUL"]
    # one backdoored model flagged on a wrong label does not count as detected; the clean one at 0.4 is a false
    # flag; the all-to-all model counts as flagged (backdoor found), not in the target accuracy, and in the AUC
    assert row["detection_accuracy"] == 0.5 and row["false_flags_on_clean"] == 0.5
    assert row["all_to_all_flagged"] == 1.0
    assert row["roc_auc"] == pytest.approx(5 / 6) and row["n_backdoored"] == 3 and row["n_clean"] == 2
