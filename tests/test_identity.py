"""One identity per model (issue: models were told apart by (attack, seed)): two suspects of one attack class at one
seed -- two patches, two targets -- stay two distinct rows in every section's table, images and text; and a
reading that cannot be made says so (`measurable`) instead of reading another label."""

import json

import pandas as pd
import pytest
import torch

from ebyd_utils import pipeline as pl
from ebyd_utils import zoo
from ebyd_utils.config import get_profile
from ebyd_utils.experiments import attacks, exposure, label_detection, model_detection, removal
from ebyd_utils.experiments import trigger_recovery as recovery

TWINS = ("badnets-s0", "badnets-s0-second")  # one seed, one attack class, another patch and target


@pytest.fixture(scope="module")
def twin_run(smoke_run):
    """The smoke run with cheap section budgets (the tables' shape is under test, not the methods)."""
    profile = get_profile(
        "smoke",
        recovery=dict(methods=("nc",), nc_epochs=1),
        model_detection=dict(detectors=("exposure", "unlearning")),
        removal=dict(methods=("ft",), finetune_epochs=1),
    )
    return smoke_run.replace(profile=profile)


@pytest.fixture(scope="module")
def twins(twin_run):
    table = zoo.zoo_table(twin_run.profile).set_index("model_id")
    first = table.loc["badnets-s0"].to_dict()
    params = json.loads(first["attack_params"])
    second = {**first, "target": 5, "attack_params": json.dumps({**params, "target": 5, "position": [10, 10]})}
    rows = pd.DataFrame([{"model_id": TWINS[0], **first}, {"model_id": TWINS[1], **second}])
    return rows, zoo.models(twin_run, rows)


def test_two_models_of_one_attack_at_one_seed_are_two_models(twins):
    _, suspects = twins
    assert [s.model_id for s in suspects] == list(TWINS)
    assert suspects[0].key != suspects[1].key and {s.label for s in suspects} == {"badnets"}
    assert {s.seed for s in suspects} == {0}


def test_every_image_section_keeps_both_twins_apart(twin_run, twins, references):
    rows, suspects = twins
    refs, ref_logs = references
    logs = zoo.exposures(twin_run, suspects)

    def both(table, per_model):
        assert set(table["model_id"]) == set(TWINS), table
        assert table.groupby("model_id").size().tolist() == [per_model, per_model]

    both(attacks.model_table(twin_run, suspects), 5)  # CA ASR RA seconds poisoned
    cul = pd.concat(
        [
            exposure.exposure_table(twin_run, s, g[0]).assign(target=s.attack.single_target)
            for s, g in zip(suspects, logs)
        ]
    )
    assert set(exposure.cul_summary(cul).index.get_level_values("model_id")) == set(TWINS)
    detections = label_detection.detection_table(twin_run, suspects, logs, refs, ref_logs)
    both(detections, 2)
    assert detections.set_index(["model_id", "exposure"])["true_target"].loc[(TWINS[1], "CUL")] == 5
    assert str(detections["true_target"].dtype) == "Int64"  # integers, not 1.0
    exposed = [pl.expose(twin_run, s) for s in suspects]
    exposed = [(m, log.attrs["key"]) for m, log in exposed]
    detected = recovery.labels_from_detection(detections, suspects)
    both(recovery.recovery_table(twin_run, suspects, exposed, detected, test_size=100), 3)
    both(model_detection.model_scores(twin_run, rows, suspects, logs, refs, ref_logs), 4)
    both(removal.removal_table(twin_run, suspects, exposed, test_size=100), 1)


def test_label_detection_is_read_by_model_not_by_attack_and_seed(twins):
    _, suspects = twins
    detections = pd.DataFrame(
        [
            {"model_id": TWINS[0], "exposure": "CUL", "detected_label": 0, "flagged": True},
            {"model_id": TWINS[1], "exposure": "CUL", "detected_label": 5, "flagged": False},
        ]
    )
    assert recovery.labels_from_detection(detections, suspects) == [(0, True), (5, False)]
    with pytest.raises(ValueError, match="badnets-s0-second"):
        recovery.labels_from_detection(detections.iloc[:1], suspects)


# ------------------------------------------------------------------------------------------------- text
@pytest.fixture(scope="module")
def text_twins(text_smoke, text_models):
    pytest.importorskip("transformers")
    from ebyd_utils.text.attacks import make_text_attack
    from ebyd_utils.text.pipeline import train_text_suspect

    p = text_smoke.profile
    made = [
        make_text_attack("badnets_word", target=p.target, rate=p.rate, seed=0, triggers=(word,))
        for word in ("cf", "tq")
    ]
    return [train_text_suspect(text_smoke, attack, 0, progress=False) for attack in made]


def test_every_text_section_keeps_both_twins_apart(text_smoke, text_models, text_twins):
    from ebyd_utils.text.experiments import attacks as text_attacks
    from ebyd_utils.text.experiments import exposure as text_exposure
    from ebyd_utils.text.experiments import label_detection as text_detection
    from ebyd_utils.text.experiments import model_detection as text_model_detection
    from ebyd_utils.text.experiments import removal as text_removal
    from ebyd_utils.text.experiments import trigger_recovery as text_recovery

    _, references = text_models
    ids = {s.model_id for s in text_twins}
    assert len(ids) == 2 and {s.label for s in text_twins} == {"badnets_word"}

    def both(table, same_rows=True):
        assert ids <= set(table["model_id"]), table
        counts = table[table["model_id"].isin(ids)].groupby("model_id").size()
        assert counts.nunique() == 1 or not same_rows, counts

    both(text_attacks.model_table(text_smoke, text_twins, references))
    exposed = text_exposure.expose_zoo(text_smoke, text_twins, references, progress=False)
    both(text_exposure.log_table(text_smoke, exposed), same_rows=False)  # each CUL stops at its own epoch
    detections = text_detection.all_detections(text_smoke, exposed)
    both(detections)
    assert len(detections) == 2 * (1 + len(text_smoke.profile.exposures)) * 2  # models x exposures x readings
    flags = text_recovery.flag_scans(
        text_recovery.scan_table(text_smoke, text_twins, references, exposed), text_smoke.profile.scan.margin
    )
    both(flags)
    both(text_model_detection.model_scores(detections, flags))
    both(text_removal.removal_table(text_smoke, text_twins, flags))


class _Collapsed(torch.nn.Module):
    """A text model that sends every row to label 1, whatever it reads: an exposed copy that has collapsed."""

    def forward(self, tokens):
        return torch.tensor([[0.0, 5.0]]).repeat(len(tokens), 1)


def test_a_scan_that_cannot_read_a_label_says_so_and_reads_no_other(text_smoke):
    from ebyd_utils.text.defenses.token_scan import TokenScanConfig, flip_rates

    cfg = TokenScanConfig(rows=32, min_rows=10)
    table = flip_rates(_Collapsed(), text_smoke.probe, [(2000,), (2001,)], 2, cfg)
    assert (table["unmeasured_labels"] == "1").all()  # no row is off label 1: nothing can flip to it
    assert table["flip_label"].tolist() == [0, 0] and (table["flip_rate"] == 0).all()


def test_flag_scans_marks_an_unreadable_target_not_measurable():
    from ebyd_utils.text.experiments.trigger_recovery import flag_scans

    base = {
        "attack": "badnets_word",
        "seed": 0,
        "exposure": "cul-all",
        "words": "cf",
        "flip_label": 0,
        "drift": 0.5,
        "reference_read": False,
        "reference_rate": 0.0,
    }
    scans = pd.DataFrame(
        [
            {**base, "model_id": "collapsed", "tokens": "2000", "flip_rate": 0.0, "unmeasured_labels": "1"},
            {**base, "model_id": "readable", "tokens": "2000", "flip_rate": 0.0, "unmeasured_labels": ""},
            {
                **base,
                "model_id": "found",
                "tokens": "2000",
                "flip_rate": 0.9,
                "reference_read": True,
                "unmeasured_labels": "1",
            },
        ]
    )
    flags = flag_scans(scans, margin=0.1).set_index("model_id")
    assert not flags.loc["collapsed", "measurable"] and "label(s) 1" in flags.loc["collapsed", "unmeasurable_reason"]
    assert flags.loc["readable", "measurable"] and not flags.loc["readable", "flagged"]  # a real miss
    assert flags.loc["found", "measurable"] and flags.loc["found", "flagged"]  # seen all the same
