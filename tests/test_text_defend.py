"""The text track's token scan, model detection and removal (text/experiments/, text/defenses/token_scan.py) on the
smoke zoo: the scan finds BadNets-word's trigger, the reset removes it, the flags follow the references."""

import pandas as pd
import pytest
import torch

pytest.importorskip("transformers")

from ebyd_utils.text.config import get_text_profile  # noqa: E402
from ebyd_utils.text.defenses.token_scan import (  # noqa: E402
    TokenScanConfig,
    as_tokens,
    candidate_sets,
    embedding_drift,
    inserted_rows,
    reset_tokens,
    word_embeddings,
)
from ebyd_utils.text.experiments import model_detection, removal, trigger_recovery  # noqa: E402
from ebyd_utils.text.models import build_text_model, checkpoint_embeddings  # noqa: E402
from ebyd_utils.text.pipeline import evaluate  # noqa: E402
from ebyd_utils.text.tokens import Tokens  # noqa: E402


@pytest.fixture(scope="module")
def scans(text_smoke, text_models, text_exposed):
    return trigger_recovery.scan_table(text_smoke, *text_models, text_exposed)


def test_inserted_rows_put_the_ids_inside_the_sentence():
    ids = torch.tensor([[101, 5, 6, 102, 0], [101, 7, 102, 0, 0]])
    tokens = Tokens(ids, (ids != 0).long())
    out = as_tokens(inserted_rows(tokens, (9, 8), torch.Generator().manual_seed(0)), tokens.device)
    assert out.input_ids.shape == (2, 6) and out.attention_mask.sum(1).tolist() == [6, 5]
    for row, n, old in zip(out.input_ids.tolist(), out.attention_mask.sum(1).tolist(), ([5, 6], [7])):
        assert row[0] == 101 and row[n - 1] == 102
        body = row[1 : n - 1]
        assert sorted(body) == sorted(old + [9, 8]) and [t for t in body if t not in (8, 9)] == old


def test_embedding_drift_ranks_a_moved_token_first_and_checks_shapes():
    model = build_text_model("tiny-bert", 2, seed=3)
    reference = checkpoint_embeddings("tiny-bert")
    assert torch.equal(word_embeddings(model).detach(), reference)  # every tiny-bert starts from one checkpoint
    assert embedding_drift(model, reference).abs().max() < 1e-6
    with torch.no_grad():
        word_embeddings(model)[2000] = -word_embeddings(model)[2000] + 0.1
        word_embeddings(model)[101] *= -1  # a special token is never a candidate
    drift = embedding_drift(model, reference)
    assert drift.argmax().item() == 2000 and drift[101] == 0
    assert candidate_sets(drift, TokenScanConfig(candidates=3, pair_candidates=2))[0] == (2000,)
    assert len(candidate_sets(drift, TokenScanConfig(candidates=3, pair_candidates=3))) == 3 + 3
    with pytest.raises(ValueError, match="checkpoint"):
        embedding_drift(model, reference[:100])


def test_reset_tokens_copies_the_pad_row_and_leaves_the_suspect():
    model = build_text_model("tiny-bert", 2, seed=0)
    before = word_embeddings(model).detach().clone()
    repaired = reset_tokens(model, [2000, 2001])
    assert torch.equal(word_embeddings(repaired)[2000], before[0])
    assert torch.equal(word_embeddings(repaired)[2001], before[0])
    assert torch.equal(word_embeddings(model), before)


def test_the_scan_finds_and_the_reset_removes_the_word_trigger(text_smoke, text_models, scans):
    suspects, _ = text_models
    badnets = next(s for s in suspects if s.label == "badnets_word")
    flags = trigger_recovery.flag_scans(scans, text_smoke.profile.scan.margin)
    row = flags[(flags["attack"] == "badnets_word") & (flags["exposure"] == "none")].iloc[0]
    assert row["flagged"] and row["score"] >= 0.9 and row["top_label"] == badnets.attack.target
    trigger_ids = set(text_smoke.tokenizer.convert_tokens_to_ids(list(badnets.attack.triggers)))
    reset = {int(t) for t in row["reset_tokens"].split()}
    assert reset & trigger_ids  # it found the attack's rare words
    after = evaluate(text_smoke, reset_tokens(badnets.model, reset), badnets.attack)
    assert after["ASR"] <= badnets.record["ASR"] - 0.5 and after["CA"] >= badnets.record["CA"] - 0.05


def test_flags_follow_the_references_per_token_and_pairs_only_when_needed():
    row = lambda attack, tokens, label, rate, ref, read=True: {  # noqa: E731
        "model_id": f"{attack}-s0",
        "attack": attack,
        "seed": 0,
        "exposure": "none",
        "unmeasured_labels": "",
        "tokens": tokens,
        "words": tokens,
        "flip_label": label,
        "flip_rate": rate,
        "reference_read": read,
        "reference_rate": ref,
    }
    scans = pd.DataFrame(
        [
            row("lwp", "11", 0, 0.55, 0.5),  # flips the references almost as much: not flagged
            row("lwp", "11 12", 0, 0.95, 0.2),  # a pair only the suspect follows
            row("bad", "21", 1, 0.9, 0.0),
            row("bad", "21 22", 1, 0.9, 0.0),
            row("bad", "30", 0, 1.0, 1.0),  # a natural word: flips every model, flagged in none
            row("clean", "40", 1, 0.97, 0.95),
            row("clean", "41", 0, 0.6, float("nan")),  # the references cannot tell: never flagged
            row("addsent", "50", 0, 0.08, 0.0, False),  # below the table's margin, never read on the references
        ]
    )
    flags = trigger_recovery.flag_scans(scans, margin=0.1).set_index("attack")
    assert flags.loc["lwp", "reset_tokens"] == "11 12"  # a pair whose tokens are not flagged alone
    assert flags.loc["lwp", "score"] == pytest.approx(0.75) and flags.loc["lwp", "top_words"] == "11 12"
    assert flags.loc["bad", "reset_tokens"] == "21"  # 22 rides along with 21; 30 flips every model
    assert flags.loc["bad", "score"] == pytest.approx(0.9) and flags.loc[["lwp", "bad"], "flagged"].all()
    assert not flags.loc["clean", "flagged"] and flags.loc["clean", "score"] == pytest.approx(0.02)
    assert (flags["threshold"] == 0.1).all() and not flags.loc["addsent", "flagged"]
    # a smaller margin than the table was read at cannot flag a set the references never read
    smaller = trigger_recovery.flag_scans(scans, margin=0.01).set_index("attack")
    assert not smaller.loc["addsent", "flagged"] and smaller.loc["addsent", "score"] == pytest.approx(0.08)
    with pytest.raises(ValueError, match="reference_read.*scan_table"):
        trigger_recovery.flag_scans(scans.drop(columns="reference_read"), margin=0.1)


def test_model_detection_and_removal_tables_cover_every_model(text_smoke, text_models, text_exposed, scans):
    from ebyd_utils.text.experiments.label_detection import all_detections

    suspects, _ = text_models
    detections = all_detections(text_smoke, text_exposed)
    flags = trigger_recovery.flag_scans(scans, text_smoke.profile.scan.margin)
    scores = model_detection.model_scores(detections, flags)
    exposures = {"none", *(e.name for e in text_smoke.profile.exposures)}
    assert set(scores["detector"]) == {"exposure score", "token scan"} and set(scores["exposure"]) == exposures
    assert len(scores) == 2 * len(exposures) * len(suspects)  # the references are never scored
    metrics = model_detection.model_detection(scores, resamples=200)
    assert len(metrics) == 2 * len(exposures) and (metrics["auc_low"] <= metrics["roc_auc"]).all()
    assert (metrics["roc_auc"] <= metrics["auc_high"]).all()  # each AUC inside its own interval
    table = removal.removal_table(text_smoke, suspects, flags)
    assert len(table) == len(suspects) * (1 + len(exposures))
    assert table.loc[table["attack"] == "clean", "DER"].isna().all()
    assert table.loc[table["attack"] != "clean", "DER"].notna().all()
    summary = removal.removal_summary(table)
    assert set(summary["method"]) == {"FT", "token reset"} and summary["clean_CA_loss"].notna().all()


def test_scan_and_removal_settings_are_checked():
    with pytest.raises(ValueError, match="pair_candidates"):
        get_text_profile("smoke", scan=dict(candidates=2, pair_candidates=3))
    with pytest.raises(ValueError, match="margin"):
        get_text_profile("smoke", scan=dict(margin=1.5))
    with pytest.raises(ValueError, match="ft_epochs"):
        get_text_profile("smoke", removal=dict(ft_epochs=0))
    with pytest.raises(ValueError, match="seeds must be < 1000"):
        get_text_profile("smoke", clean_seeds=(0, 1000))


def test_the_scan_reads_each_candidate_on_the_references(text_smoke, scans):
    margin = text_smoke.profile.scan.margin
    assert {"reference_rate", "flip_rate"} <= set(scans.columns) and "role" not in scans
    low = scans["flip_rate"].fillna(0.0) <= margin
    assert scans["reference_read"].equals(~low)  # read exactly the sets above the margin
    assert (scans.loc[low, "reference_rate"] == 0.0).all()  # not read on the references: cannot flag
    read = scans.loc[~low, "reference_rate"]
    assert len(read) and read.notna().any()  # the references read the sets handed to them
    # BadNets' rare-word trigger flips the suspect, not the clean reference
    bad = scans[(scans["attack"] == "badnets_word") & (scans["exposure"] == "none") & ~low]
    assert ((bad["flip_rate"] - bad["reference_rate"]) >= 0.8).any()


def test_removal_and_baselines_come_back_from_the_cache(text_smoke, text_models, text_exposed, scans, monkeypatch):
    from ebyd_utils.text.experiments import baselines

    suspects, _ = text_models
    flags = trigger_recovery.flag_scans(scans, text_smoke.profile.scan.margin)
    main = text_smoke.profile.exposures[0].name
    exposed = {r["suspect"].key: r["model"] for r in text_exposed[main][0]}
    cfg = baselines.BaselineConfig(rows=16, strip_copies=2)
    repairs = removal.removal_table(text_smoke, suspects, flags)
    table = baselines.baseline_table(text_smoke, suspects, exposed, main, cfg)
    assert set(table["variant"]) == {"STRIP on suspect", f"STRIP on {main}", "no filter", "ONION"}

    def refuse(*args, **kwargs):
        raise AssertionError("a cached removal or baseline unit was computed again")

    for owner, name in (
        (removal, "evaluate"),
        (removal, "fine_tuned"),
        (removal, "reset_tokens"),
        (baselines, "strip_rows"),
        (baselines, "onion_rows"),
        (baselines.NgramScorer, "fit"),
    ):
        monkeypatch.setattr(owner, name, refuse)
    pd.testing.assert_frame_equal(removal.removal_table(text_smoke, suspects, flags), repairs)
    pd.testing.assert_frame_equal(baselines.baseline_table(text_smoke, suspects, exposed, main, cfg), table)
    with pytest.raises(ValueError, match="not one of the profile"):
        baselines.baseline_table(text_smoke, suspects, exposed, "cul-elsewhere", cfg)
