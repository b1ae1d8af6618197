"""The paper's claims as with/without comparisons on the smoke zoo: exposure improves (1) label detection, (2)
trigger recovery, (3) model detection, (4) removal; and one comparison on text. Each test runs the package's own
section code (the notebooks' functions) on models the smoke zoo trains anyway (the session cache shares them).

How the bounds were set (the procedure every bound here follows): measured on the smoke models named below on the
CPU kinds reachable -- a 2-core AMD EPYC Zen 3 (no native bf16: fp32) and the same machine with bf16 autocast forced
on (emulated; the path an AVX-512-bf16 CPU such as Zen 4 takes) -- and set with the margin stated beside each. A
comparison (with exposure against without) is asserted wherever a level would depend on the CPU. Emulated bf16 is
not a real Zen 4's bits: the text test passed both and failed on a Zen 4 CI runner (stop 39), so it is now measured
on that Zen 4 itself, in bf16 and in fp32, over six seeds.
"""

import pytest

from ebyd_utils import pipeline as pl
from ebyd_utils import zoo
from ebyd_utils.config import get_profile
from ebyd_utils.core.metrics import roc_auc
from ebyd_utils.experiments import label_detection, model_detection
from ebyd_utils.experiments import trigger_recovery as recovery

BACKDOORED = ["badnets-s0", "badnets-s1", "blend-s0", "blend-s1", "trojan-s0", "trojan-s1"]  # implant at smoke
CLEAN = ["clean-s0", "clean-s1", "clean-d100", "clean-d101"]
RECOVERY = ["badnets-s0", "blend-s0", "wanet-s0"]  # notebook 04's smoke models (its NC units are reused)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def claim_zoo(smoke, smoke_run, references):
    rows = zoo.zoo_table(smoke).set_index("model_id").loc[BACKDOORED + CLEAN].reset_index()
    models = zoo.models(smoke_run, rows)
    logs = zoo.exposures(smoke_run, models)
    refs, ref_logs = references
    return rows, models, logs, refs, ref_logs


@pytest.fixture(scope="module")
def detections(smoke_run, claim_zoo):
    _, models, logs, refs, ref_logs = claim_zoo
    return label_detection.detection_table(smoke_run, models, logs, refs, ref_logs).set_index(["model_id", "exposure"])


def test_1_exposure_reveals_the_target_that_the_model_as_it_is_hides(smoke, detections):
    bad = detections.loc[BACKDOORED]
    cul, plain = bad.xs("CUL", level="exposure"), bad.xs("none", level="exposure")
    # without exposure no backdoored model is flagged (measured: largest score 0.007; threshold 0.35)
    assert not plain["flagged"].any(), plain["score"]
    # with exposure the label is the target on at least 5 of 6 (measured 6 of 6 in fp32; BadNets 6 of 6 seeds on
    # Zen 4) and the score rises by at least 0.15 on at least 5 of 6 (measured: the smallest rise 0.22, fp32)
    assert (cul["detected_label"] == cul["true_target"]).sum() >= 5, cul[["detected_label", "true_target"]]
    assert (cul["score"] - plain["score"] >= 0.15).sum() >= 5, cul["score"] - plain["score"]
    # and half are flagged with it (measured 4 of 6 in fp32: Blend's two scored 0.23 and 0.31), no clean model is
    # (measured: the largest clean score 0.256 in fp32, 0.24 over six clean models on Zen 4; threshold 0.35)
    assert cul["correct"].sum() >= 3
    clean = detections.loc[CLEAN].xs("CUL", level="exposure")
    assert not clean["flagged"].any(), clean["score"]


def test_2_exposure_picks_the_label_that_narrows_trigger_recovery(smoke, smoke_run, references):
    # plain NC inverts every class and names its smallest mask; "CUL label" inverts only the label that exposure
    # read (a tenth of the work). Measured on notebook 04's smoke models (fp32): NC alone names the target on 1 of
    # 3 (Blend and WaNet go to other classes), the CUL label on 3 of 3, and its trigger fires the suspect (ASR
    # >= 0.99)
    run = smoke_run.replace(profile=get_profile("smoke", recovery=dict(methods=("nc",))))
    rows = zoo.zoo_table(smoke).set_index("model_id").loc[RECOVERY].reset_index()
    suspects = zoo.models(run, rows)
    refs, ref_logs = references
    detections = label_detection.detection_table(run, suspects, zoo.exposures(run, suspects), refs, ref_logs)
    labels = recovery.labels_from_detection(detections, suspects)
    exposed = [(model, log.attrs["key"]) for model, log in (pl.expose(run, s) for s in suspects)]
    table = recovery.recovery_table(run, suspects, exposed, labels, test_size=300).set_index(["model_id", "exposure"])
    named = {e: int(table.xs(e, level="exposure")["correct"].sum()) for e in ("none", "CUL label")}
    assert named["CUL label"] >= named["none"] and named["CUL label"] >= len(RECOVERY) - 1, named
    assert (table.xs("CUL label", level="exposure")["asr_on_suspect"] >= 0.9).all()


def test_3_exposure_lifts_model_detection_from_near_chance(smoke_run, claim_zoo):
    rows, models, logs, refs, ref_logs = claim_zoo
    run = smoke_run.replace(profile=get_profile("smoke", model_detection=dict(detectors=("exposure", "unlearning"))))
    scores = model_detection.model_scores(run, rows, models, logs, refs, ref_logs)
    auc = {
        (d, e): roc_auc(g["backdoored"].astype(int), g["score"])
        for (d, e), g in scores.groupby(["detector", "exposure"])
    }
    # measured (fp32; 6 backdoored, 4 clean): exposure score 0.75 -> 0.96, share variance ~0.6 -> 1.00 (an earlier
    # smoke zoo on Zen 4: 0.50 -> 0.89). Asserted: each detector gains at least 0.15 and reaches 0.8 after CUL
    for detector in ("exposure", "unlearning"):
        assert auc[(detector, "CUL")] >= auc[(detector, "none")] + 0.15, auc
        assert auc[(detector, "CUL")] >= 0.8, auc


def test_5_text_exposure_moves_a_word_backdoor_onto_its_target_the_plain_reading_does_not(text_smoke):
    # text, with/without on six BadNets-word models of the smoke text zoo (tiny BERT, generated sentiment rows,
    # model seeds 0-5): the share of the defender's probe rows each model sends to its target, as it is and after
    # CUL on all weights. Measured on a 2-core Zen 4 (family 25 model 17), bf16 | fp32 (bf16 switched off):
    # plain 0.47-0.67 | 0.47-0.61; after CUL 0.83, 1.00, 0.99, 1.00, 0.97, 0.67 | 0.93, 1.00, 0.97, 1.00, 0.99,
    # 0.55: a rise of at least 0.3 on 5 of 6 seeds in both. Asserted: every plain share <= 0.7 and a rise of at
    # least 0.25 on at least 4 of 6 seeds (one seed and 0.05 of margin).
    # What this does not show, and is not asserted: at smoke CUL also drives 5 of 6 clean controls onto label 0,
    # the BadNets target (share 0.94-1.00 in both precisions), so the label reading here cannot tell the backdoor
    # from that drift; the excess over one clean reference (what test 1 reads on images) turns on where that
    # single reference drifts (label 1 in fp32, label 0 in bf16 here). Whether text exposure names the target
    # beyond such drift is measured at quick, with the clean controls counted beside it (notebook 10).
    from ebyd_utils.text.experiments.exposure import readings
    from ebyd_utils.text.pipeline import expose_text, train_text_suspect

    cul_all = next(e for e in text_smoke.profile.exposures if e.name == "cul-all")
    plain, exposed = [], []
    for seed in range(6):
        suspect = train_text_suspect(text_smoke, "badnets_word", seed, progress=False, model_id=f"badnets_word-s{seed}")
        model, _ = expose_text(text_smoke, suspect, cul_all, monitor=False, progress=False)
        target = suspect.attack.target
        plain.append(float(readings(text_smoke, suspect.model)["share"][target]))
        exposed.append(float(readings(text_smoke, model)["share"][target]))
    rises = [a - b for a, b in zip(exposed, plain)]
    assert max(plain) <= 0.7, plain
    assert sum(r >= 0.25 for r in rises) >= 4, (plain, exposed)
