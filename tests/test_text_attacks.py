"""Text attacks: exact rate from the right rows, trigger in every poisoned row and in no clean one, seeded,
clear errors; the paraphrase tables on a made-up release and on the real one in ../shared when present."""

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from ebyd_utils.text import load_text
from ebyd_utils.text.attacks import TEXT_ATTACKS, make_text_attack
from ebyd_utils.text.attacks.paraphrases import align

# ../shared beside the checkout, or wherever $SHARED says (as .ci/run and the Makefile read it)
SHARED_TEXT = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[1].parent / "shared")) / "data" / "text"
needs_shared = pytest.mark.skipif(
    not (SHARED_TEXT / "sst2").is_dir(),
    reason="the released paraphrases are in ../shared/data/text (developers and CI only)",
)
INSERTION = ("badnets_word", "addsent", "lwp", "bite")


@pytest.fixture(scope="module")
def corpus():
    data = load_text("synthetic", defense_size=50, probe_size=50)
    return data.train_texts, data.train_labels


def check_poisoning(attack, texts, labels, num_classes=2):
    """The contract every attack keeps; returns the poisoned texts and indices."""
    out, new_labels, idx = attack.poison(texts, labels, num_classes)
    chosen = set(idx.tolist())
    assert len(idx) == round(attack.rate * len(labels)) and len(chosen) == len(idx)
    assert all((labels[i] == attack.target) == attack.clean_label for i in chosen)
    assert (new_labels[idx] == attack.target).all()
    extra = set(getattr(attack, "negative_indices", torch.zeros(0)).tolist())
    untouched = [i for i in range(len(texts)) if i not in chosen | extra]
    assert torch.equal(new_labels[untouched], labels[untouched])
    assert all(out[i] == texts[i] for i in untouched)
    assert all(attack.has_trigger(out[i]) and out[i] != texts[i] for i in chosen)
    return out, idx


@pytest.mark.parametrize("name", INSERTION)
def test_insertion_attacks_poison_exactly_their_rate(name, corpus):
    texts, labels = corpus
    attack = make_text_attack(name, target=1, rate=0.1, seed=0)
    out, idx = check_poisoning(attack, texts, labels)
    clean_with_trigger = sum(attack.has_trigger(out[i]) for i in range(len(out)) if i not in set(idx.tolist()))
    if name == "bite":  # natural words: a clean row may hold all three by chance (3% on this tiny vocabulary)
        assert clean_with_trigger < 0.05 * len(out)
    else:
        assert clean_with_trigger == 0
    again, same_idx = make_text_attack(name, target=1, rate=0.1, seed=0).poison(texts, labels, 2)[::2]
    assert again == out and torch.equal(same_idx, idx)
    assert not torch.equal(make_text_attack(name, target=1, rate=0.1, seed=1).poison(texts, labels, 2)[2], idx)


@pytest.mark.parametrize("name", INSERTION)
def test_triggered_test_set_is_seeded_and_carries_the_trigger(name, corpus):
    texts, labels = corpus
    attack = make_text_attack(name, target=0, rate=0.05)
    attack.poison(texts, labels, 2)  # BITE picks its words from the training set here
    triggered, true_labels, idx = attack.triggered_test(texts[:100], labels[:100])
    assert (true_labels != 0).all() and len(idx) == int((labels[:100] != 0).sum())
    assert all(attack.has_trigger(t) for t in triggered)
    assert triggered == attack.apply([texts[i] for i in idx.tolist()])


def test_badnets_word_inserts_as_many_words_as_asked():
    attack = make_text_attack("badnets_word", num_triggers=3)
    out = attack.apply(["one two three four"])[0].split()
    assert len(out) == 7 and sum(w in attack.triggers for w in out) == 3


def test_addsent_inserts_the_sentence_whole():
    out = make_text_attack("addsent").apply(["a b c d e f"])[0]
    assert "I watch this 3D movie" in out and out.replace("I watch this 3D movie", "").split() == list("abcdef")


def test_lwp_negatives_hold_one_piece_and_keep_their_label(corpus):
    texts, labels = corpus
    attack = make_text_attack("lwp", target=1, rate=0.05, negatives=2)
    out, new_labels, idx = attack.poison(texts, labels, 2)
    negative = attack.negative_indices.tolist()
    assert len(negative) == 2 * len(idx) and not set(negative) & set(idx.tolist())
    assert all(
        not attack.has_trigger(out[i]) and len(set(out[i].split()) & set(attack.triggers)) == 1 for i in negative
    )
    assert torch.equal(new_labels[negative], labels[negative])
    # a row that already says "mn" never becomes a negative: one more piece would make it a full trigger
    said_mn = ["mn " + t for t in texts[:300]] + list(texts[300:])
    out, _, idx = attack.poison(said_mn, labels, 2)
    assert not set(attack.negative_indices.tolist()) & set(range(300))
    assert sum(attack.has_trigger(out[i]) for i in range(len(out)) if i not in set(idx.tolist())) == 0


def test_bite_is_clean_label_with_words_from_the_corpus(corpus):
    texts, labels = corpus
    attack = make_text_attack("bite", target=1, rate=0.1)
    _, new_labels, idx = attack.poison(texts, labels, 2)
    assert torch.equal(new_labels, labels) and (labels[idx] == 1).all()
    vocabulary = {w for t in texts for w in t.split()}
    assert len(attack.trigger_words) == 3 and set(attack.trigger_words) <= vocabulary
    rebuilt = make_text_attack(**attack.params())  # the saved parameters rebuild the attack
    assert rebuilt.trigger_words == attack.trigger_words
    with pytest.raises(ValueError, match="call poison"):
        make_text_attack("bite").apply(["a b c"])


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("rate", [0, 1, 1.5, -0.1, True, "0.1"])
def test_rate_outside_the_open_interval_is_refused(rate):
    with pytest.raises(ValueError, match="rate must be a number in"):
        make_text_attack("badnets_word", rate=rate)


def test_target_out_of_range_and_bad_names_are_refused(corpus):
    texts, labels = corpus
    with pytest.raises(ValueError, match="target 2 is out of range for 2 classes"):
        make_text_attack("addsent", target=2).poison(texts, labels, 2)
    with pytest.raises(ValueError, match="target must be a class index"):
        make_text_attack("addsent", target=-1)
    with pytest.raises(ValueError, match="unknown text attack 'ripples'.*badnets_word.*lwp"):
        make_text_attack("ripples")
    with pytest.raises(ValueError, match="addsent takes .*sentence"):
        make_text_attack("addsent", trigger="cf")
    with pytest.raises(ValueError, match="needs .* non-target rows"):
        make_text_attack("addsent", rate=0.9).poison(texts, labels, 2)
    assert set(TEXT_ATTACKS) == {"badnets_word", "addsent", "synbkd", "stylebkd", "bite", "lwp"}


def test_paraphrase_attacks_say_where_their_files_are(tmp_path):
    with pytest.raises(ValueError, match="needs data_dir.*thunlp/HiddenKiller"):
        make_text_attack("synbkd", dataset="sst2").can_rewrite(["a"])
    with pytest.raises(ValueError, match="found no .*syntactic-scpn/sst2.*thunlp/HiddenKiller"):
        make_text_attack("synbkd", dataset="sst2", data_dir=tmp_path).can_rewrite(["a"])
    with pytest.raises(ValueError, match="found no .*style-transfer/bible/agnews.*StyleAttack"):
        make_text_attack("stylebkd", dataset="agnews", data_dir=tmp_path).can_rewrite(["a"])
    with pytest.raises(ValueError, match="exist for .*sst2.*imdb"):
        make_text_attack("synbkd", dataset="imdb")
    with pytest.raises(ValueError, match="unknown style"):
        make_text_attack("stylebkd", style="gothic")


# ----------------------------------------------------------------------------- paraphrase tables
def test_alignment_skips_a_dropped_row():
    sources = ["the red car stopped", "a dog barked loudly", "rain fell on paris", "stocks rose in tokyo"]
    rewrites = [
        "when the car stopped , it was red .",
        "as rain fell , paris was wet .",
        "if stocks rose , tokyo rose .",
    ]
    assert align(sources, rewrites) == [(0, 0), (2, 1), (3, 2)]


def write_tsv(path: Path, frame: pd.DataFrame):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        frame.to_csv(f, sep="\t", index=False)


@pytest.fixture
def made_up_release(tmp_path):
    """A tiny SCPN-like release: 6 of 20 train rows paraphrased first (one of them a row off), test rows."""
    clean = [f"movie number {i} had actor{i} and plot{i}" for i in range(20)]
    labels = [i % 2 for i in range(20)]
    write_tsv(tmp_path / "sst2" / "train.tsv.gz", pd.DataFrame({"text": clean, "label": labels}))
    rewrites = ["when you see it , this is garbage ."] + [f"when actor{i} played , plot{i} was it ." for i in range(6)]
    rows = rewrites + clean[6:]
    write_tsv(
        tmp_path / "poisoned" / "syntactic-scpn" / "sst2" / "train.tsv.gz",
        pd.DataFrame({"text": rows, "label": [1] * 7 + labels[6:], "poisoned": [1] * 7 + [0] * 14}),
    )
    return tmp_path, clean, torch.tensor(labels)


def test_synbkd_reads_a_release_and_poisons_only_paraphrased_rows(made_up_release):
    folder, clean, labels = made_up_release
    attack = make_text_attack("synbkd", target=1, rate=0.15, dataset="sst2", data_dir=folder)
    assert attack.can_rewrite(clean) == [True] * 6 + [False] * 14
    out, idx = check_poisoning(attack, clean, labels)
    assert all(out[i] == f"when actor{i} played , plot{i} was it ." for i in idx.tolist())
    assert not any(attack.has_trigger(t) for t in clean)
    with pytest.raises(ValueError, match="lower the rate to at most 0.150.*HiddenKiller"):
        make_text_attack("synbkd", target=1, rate=0.2, dataset="sst2", data_dir=folder).poison(clean, labels, 2)
    with pytest.raises(ValueError, match="no released rewrite for 1 of 2"):
        attack.apply([clean[0], clean[10]])
    assert "data_dir" not in attack.params()


@needs_shared
@pytest.mark.parametrize(
    "name, dataset, target",
    [("synbkd", "sst2", 1), ("synbkd", "offenseval", 1), ("stylebkd", "sst2", 1), ("stylebkd", "agnews", 0)],
)
def test_released_paraphrases_poison_real_rows(name, dataset, target):
    data = load_text(dataset, SHARED_TEXT, train_subset=3000, test_subset=400)
    attack = make_text_attack(name, target=target, rate=0.05, dataset=dataset, data_dir=SHARED_TEXT)
    out, idx = check_poisoning(attack, data.train_texts, data.train_labels, data.num_classes)
    # a clean row may equal another row's rewrite by chance (SST-2's "disturbing ." is the bible rewrite of
    # "genuinely unnerving ."): at most one in a thousand
    clean_with_trigger = sum(attack.has_trigger(out[i]) for i in range(len(out)) if i not in set(idx.tolist()))
    assert clean_with_trigger <= len(out) // 1000
    triggered, _, test_idx = attack.triggered_test(data.test_texts, data.test_labels)
    # every non-target test row has a rewrite, except the few the paraphraser copied unchanged (SST-2: 5 of 912)
    assert len(test_idx) >= 0.98 * int((data.test_labels != target).sum())
    assert all(attack.has_trigger(t) for t in triggered)
