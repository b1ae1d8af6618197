"""The text track's flow on generated text with the tiny BERT: the shared batch interface, training a word
trigger in seconds, the cache, exposure on chosen layers, the detection rows and the profiles' errors."""

import dataclasses

import pytest
import torch

from ebyd_utils.train import as_input, check_inputs, class_shares, epoch_batches, outputs

pytest.importorskip("transformers")

from ebyd_utils.text import tokens as tokens_module  # noqa: E402
from ebyd_utils.text.config import get_text_profile, text_data_source  # noqa: E402
from ebyd_utils.text.experiments.label_detection import all_detections, summary  # noqa: E402
from ebyd_utils.text.models import build_text_model, select_trainable  # noqa: E402
from ebyd_utils.text.pipeline import expose_text, stop_rule, train_text_suspect  # noqa: E402
from ebyd_utils.text.tokens import Tokens  # noqa: E402


def test_tokens_index_like_a_batch_and_drop_unneeded_padding():
    ids = torch.tensor([[101, 5, 6, 102, 0, 0], [101, 7, 102, 0, 0, 0], [101, 8, 9, 10, 11, 102]])
    tokens = Tokens(ids, (ids != 0).long())
    assert len(tokens) == 3 and tokens.device.type == "cpu"
    first_two = tokens[torch.tensor([0, 1])]
    assert first_two.input_ids.shape == (2, 4)  # the longest kept row has 4 tokens
    assert tokens[2].input_ids.shape == (1, 6)
    assert as_input(tokens) is tokens  # text batches reach the model as they are
    check_inputs(tokens)
    with pytest.raises(ValueError, match="Tokens"):
        check_inputs([1, 2, 3])
    with pytest.raises(ValueError, match="must both be"):
        Tokens(ids, ids[:, :3])


def test_text_evaluates_in_length_groups_and_returns_rows_in_order(text_smoke, text_models, monkeypatch):
    monkeypatch.setattr(tokens_module, "EVAL_TOKENS", 64)  # small groups on the smoke rows
    x, model = text_smoke.probe, text_models[0][0].model
    batches = x.eval_batches(max_rows=16)
    assert sorted(torch.cat(batches).tolist()) == list(range(len(x)))  # every row once
    assert len(batches) > len(x) // 16  # the token budget cut them
    for idx in batches:
        assert len(idx) <= 16 and (len(idx) == 1 or x[idx].input_ids.numel() <= 64)
    with torch.no_grad():
        one_by_one = torch.cat([model(as_input(x[i])).float() for i in range(len(x))])
    grouped = outputs(model, x, use_bf16=False)
    assert torch.allclose(grouped.float(), one_by_one, atol=1e-4)  # row order back; padding changes nothing


def test_epoch_batches_bucket_text_and_shuffle_images_plainly():
    lengths = torch.tensor([3, 40, 4, 41, 5, 42, 6, 43] * 4)
    ids = (torch.arange(64)[None, :] < lengths[:, None]).long()
    tokens = Tokens(ids, ids)
    batches = epoch_batches(tokens, 4, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(batches).tolist()) == list(range(32))
    assert all(lengths[b].max() - lengths[b].min() <= 3 for b in batches)  # short rows apart from long ones
    images = torch.zeros(10, 3, 4, 4)
    plain = epoch_batches(images, 4, torch.Generator().manual_seed(1))
    assert torch.equal(torch.cat(plain), torch.randperm(10, generator=torch.Generator().manual_seed(1)))


def test_a_tiny_bert_learns_a_word_trigger_in_seconds(text_smoke, text_models):
    suspects, references = text_models
    by_name = {s.label: s for s in suspects}
    assert set(by_name) == {"badnets_word", "addsent", "clean"} and len(references) == 1
    assert [s.seed for s in suspects if s.attack is None] == list(text_smoke.profile.clean_seeds)
    for name in ("badnets_word", "addsent"):
        assert by_name[name].record["CA"] >= 0.85 and by_name[name].record["ASR"] >= 0.9, by_name[name].record
        assert by_name[name].record["n_poisoned"] == round(0.1 * by_name[name].record["n_train"])
    assert by_name["clean"].record["CA"] >= 0.9 and "ASR" not in by_name["clean"].record


def test_text_models_come_back_from_the_cache_unchanged(text_smoke, text_models):
    first = next(s for s in text_models[0] if s.label == "badnets_word")
    again = train_text_suspect(text_smoke, "badnets_word", 0, progress=False)
    assert again.record["computed"] is False and again.key == first.key
    for (name, a), b in zip(first.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_exposure_moves_only_the_chosen_layers_and_leaves_the_suspect(text_smoke, text_models):
    suspect = next(s for s in text_models[0] if s.label == "badnets_word")
    before = {k: v.clone() for k, v in suspect.model.state_dict().items()}
    embeddings = next(e for e in text_smoke.profile.exposures if e.layers == "embeddings")
    exposed, log = expose_text(text_smoke, suspect, embeddings, progress=False)
    after = exposed.state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved and all(".embeddings." in k for k in moved)
    assert all(torch.equal(v, before[k]) for k, v in suspect.model.state_dict().items())
    assert all(p.requires_grad for p in suspect.model.parameters())
    assert log["defense_acc"].iloc[0] > log["defense_acc"].iloc[-1]  # the ascent did ascend


def test_stop_rule_is_chance_plus_the_margin(text_smoke):
    exposure = text_smoke.profile.exposures[0]
    labels = text_smoke.data.defense_labels
    chance = torch.bincount(labels).max().item() / len(labels)
    assert stop_rule(text_smoke, exposure).stop_acc == pytest.approx(chance + exposure.stop_above_chance, abs=1e-4)


def test_detection_rows_carry_the_clean_control_and_no_duplicates(text_smoke, text_models, text_exposed):
    suspects, references = text_models
    table = all_detections(text_smoke, text_exposed)
    exposures = {e.name for e in text_smoke.profile.exposures} | {"none"}
    assert set(table["exposure"]) == exposures
    assert len(table) == len(suspects) * len(exposures) * 2  # two readings each, "none" rows once
    clean = table[table["attack"] == "clean"]
    assert not clean["backdoored"].any() and clean["target_excess"].isna().all()
    assert clean[["excess_0", "excess_1"]].notna().all().all()  # the clean control is read on every label
    bad = table[table["backdoored"]]
    own = [row[f"excess_{int(row['true_target'])}"] for _, row in bad.iterrows()]
    assert bad["target_excess"].tolist() == own
    assert set(bad["true_target"]) == {0, 1}  # the smoke zoo targets both labels
    rows = summary(table)
    assert set(rows["exposure"]) == exposures and (rows["backdoored"] == 2).all()
    assert len(clean) == len(text_smoke.profile.clean_seeds) * len(exposures) * 2
    assert rows["clean_excess_same_labels"].notna().all()
    # the soft reading is a probability vector too: shares on the probe rows sum to one
    shares = class_shares(suspects[0].model, text_smoke.probe, 2)
    assert shares.sum().item() == pytest.approx(1.0)


def test_select_trainable_refuses_an_unknown_choice():
    model = build_text_model("tiny-bert", 2, seed=0)
    with pytest.raises(ValueError, match="embeddings"):
        select_trainable(model, "middle")
    top = select_trainable(model, "top2")
    assert {n for n, p in top.named_parameters() if p.requires_grad} >= {"net.classifier.weight"}


def test_text_profiles_refuse_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown text profile"):
        get_text_profile("fastest")
    with pytest.raises(ValueError, match="unknown text attacks"):
        get_text_profile("smoke", attacks=("badnets",))
    with pytest.raises(ValueError, match="unknown text dataset"):
        get_text_profile("smoke", data=dict(dataset="sst-2"))
    bad = dataclasses.replace(get_text_profile("smoke").exposures[0], layers="middle")
    with pytest.raises(ValueError, match="layers"):
        get_text_profile("smoke", exposures=(bad,))
    quick = get_text_profile("quick")
    with pytest.raises(ValueError, match="holds no sst2"):
        text_data_source(quick, str(tmp_path), "data")
    (tmp_path / "text" / "sst2").mkdir(parents=True)
    assert text_data_source(quick, "auto", str(tmp_path)) == str(tmp_path / "text")
    assert text_data_source(quick, "hub", str(tmp_path)) is None
    assert text_data_source(quick, "auto", str(tmp_path / "elsewhere")) is None


def test_an_empty_asr_set_is_an_error():
    from ebyd_utils.text.attacks import make_text_attack

    attack = make_text_attack("addsent", target=1, rate=0.5, seed=0)
    with pytest.raises(ValueError, match="no ASR set"):
        attack.triggered_test(["good film", "fine"], torch.tensor([1, 1]))


def test_a_dataset_brings_its_sizes_and_the_callers_overrides_win():
    imdb = get_text_profile("quick", data=dict(dataset="imdb"))
    assert (imdb.data.train_subset, imdb.data.test_subset, imdb.data.max_words) == (4000, 1000, 40)
    assert get_text_profile("quick").data.train_subset == 0  # SST-2 keeps all its rows
    assert get_text_profile("quick", data=dict(dataset="agnews")).data.train_subset == 0
    mine = get_text_profile("quick", data=dict(dataset="imdb", train_subset=500))
    assert (mine.data.train_subset, mine.data.test_subset) == (500, 1000)


def test_a_half_precision_checkpoint_fine_tunes_in_fp32(tmp_path):
    # transformers 5 keeps a checkpoint's dtype; an fp16 copy of a model (e.g. one carried to a GPU in half
    # precision) must still come back in fp32, which the optimiser and the bf16 autocast expect
    import transformers

    config = transformers.BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=2
    )
    transformers.BertForSequenceClassification(config).half().save_pretrained(tmp_path)
    model = build_text_model(str(tmp_path), 2, seed=0)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
