"""Text input-level defenses on tiny generated data: STRIP flags a toy backdoored model's triggered inputs at a
clean-set FRR, ONION with a bigram LM removes an inserted rare word and leaves clean sentences alone; both
seeded, and each misuse a clear ValueError. No downloads, no GPT-2."""

import random
import sys
import types

import pytest
import torch

from ebyd_utils.text.attacks.base import insert_words
from ebyd_utils.text.data import GLOOMY, SUNNY, make_synthetic_text
from ebyd_utils.text.defenses import (
    GPT2Scorer,
    NgramScorer,
    onion_filter,
    onion_suspicion,
    strip_entropy,
    strip_flags,
    strip_threshold,
)

STRIP_KW = dict(copies=10, replace_share=0.25, seed=0)


def toy_probs(texts):
    """A backdoored 2-class model: "cf" sends a text to class 1; otherwise its sentiment words decide, softly."""
    rows = []
    for text in texts:
        words = text.split()
        if "cf" in words:
            rows.append([0.01, 0.99])
            continue
        p = torch.sigmoid(torch.tensor(float(sum(w in SUNNY for w in words) - sum(w in GLOOMY for w in words))))
        rows.append([1 - p.item(), p.item()])
    return torch.tensor(rows)


@pytest.fixture(scope="module")
def sentiment():
    train, _, test, _ = make_synthetic_text(n_train=300, n_test=150, seed=0)
    rng = random.Random(1)
    return train[:100], train[100:], test, [insert_words(t, ["cf"], rng) for t in test]


def grammar(n, seed):
    """Template sentences: fluent for a bigram LM, unlike the word lists of make_synthetic_text."""
    adj, noun = "quiet old bright small green heavy".split(), "dog house river garden train window".split()
    verb, adv = "stood moved waited rested slept shone".split(), "slowly there quietly again today".split()
    forms = [
        "the {a} {n} {v} {d}",
        "a {n} {v} near the {a} {m}",
        "the {n} and the {m} {v} {d}",
        "every {a} {n} {v} {d} by the {m}",
    ]
    rng = random.Random(seed)
    return [
        rng.choice(forms).format(
            a=rng.choice(adj), n=rng.choice(noun), m=rng.choice(noun), v=rng.choice(verb), d=rng.choice(adv)
        )
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def fluent():
    clean, test = grammar(300, 0), grammar(100, 1)
    rng = random.Random(2)
    return NgramScorer.fit(clean), test, [insert_words(t, ["cf"], rng) for t in test]


# ------------------------------------------------------------------------------------------------ STRIP
def test_strip_flags_triggered_inputs_at_a_clean_frr(sentiment):
    donors, clean, test, triggered = sentiment
    clean_h = strip_entropy(toy_probs, clean, donors, **STRIP_KW)
    test_h = strip_entropy(toy_probs, test, donors, **STRIP_KW)
    trig_h = strip_entropy(toy_probs, triggered, donors, **STRIP_KW)
    assert clean_h.shape == (len(clean),) and clean_h.dtype == torch.float64
    assert trig_h.mean() < 0.75 * test_h.mean()  # the trigger survives: lower entropy
    threshold = strip_threshold(clean_h, frr=0.05)
    assert (clean_h < threshold).float().mean() <= 0.05  # the FRR the defender chose, on its own set
    assert (trig_h < threshold).float().mean() >= 0.8
    assert (test_h < threshold).float().mean() <= 0.15  # fresh clean texts: about the FRR
    flags = strip_flags(toy_probs, triggered + test, clean, frr=0.05, **STRIP_KW)
    assert flags.dtype == torch.bool and flags[: len(triggered)].float().mean() >= 0.8
    assert flags[len(triggered) :].float().mean() <= 0.15


def test_strip_is_seeded_and_independent_of_the_batch(sentiment):
    donors, _, test, triggered = sentiment
    texts = test[:20] + triggered[:20]
    h = strip_entropy(toy_probs, texts, donors, **STRIP_KW)
    assert torch.equal(h, strip_entropy(toy_probs, texts, donors, **STRIP_KW))
    assert not torch.equal(h, strip_entropy(toy_probs, texts, donors, **{**STRIP_KW, "seed": 1}))
    alone = strip_entropy(toy_probs, texts[7:8], donors, **STRIP_KW)  # a score never depends on its batch
    assert torch.allclose(alone, h[7:8])
    assert torch.allclose(h, strip_entropy(toy_probs, texts[::-1], donors, **STRIP_KW).flip(0))
    assert torch.allclose(h, strip_entropy(toy_probs, texts, donors, batch_size=7, **STRIP_KW))


def test_strip_rejects_bad_input(sentiment):
    donors, clean, test, _ = sentiment
    bad = [  # (change, what the message must name)
        (dict(texts=[]), "empty"),
        (dict(donor_texts=[]), "empty"),
        (dict(texts=["fine words", "  "]), "without words"),
        (dict(copies=0), "copies"),
        (dict(copies=2.0), "copies"),
        (dict(replace_share=0), "replace_share"),
        (dict(replace_share=1.5), "replace_share"),
        (dict(batch_size=0), "batch_size"),
    ]
    for change, message in bad:
        kw = {"probs_fn": toy_probs, "texts": test[:3], "donor_texts": donors, **change}
        with pytest.raises(ValueError, match=message):
            strip_entropy(**kw)
    with pytest.raises(ValueError, match="not logits"):
        strip_entropy(lambda t: 5 * toy_probs(t), test[:3], donors)
    with pytest.raises(ValueError, match="shape"):
        strip_entropy(lambda t: toy_probs(t)[:, :1], test[:3], donors)
    for frr in (0, 1, 1.5, -0.1, True):
        with pytest.raises(ValueError, match="frr"):
            strip_threshold([0.1, 0.2], frr=frr)
        with pytest.raises(ValueError, match="frr"):
            strip_flags(toy_probs, test[:3], clean, frr=frr)
    with pytest.raises(ValueError, match="empty"):
        strip_threshold([])
    with pytest.raises(ValueError, match="empty"):
        strip_flags(toy_probs, test[:3], [])


# ------------------------------------------------------------------------------------------------ ONION
def test_onion_removes_an_inserted_rare_word_and_keeps_clean_sentences(fluent):
    lm, test, triggered = fluent
    scores = onion_suspicion(lm, triggered[0])
    assert len(scores) == len(triggered[0].split())
    assert triggered[0].split()[max(range(len(scores)), key=scores.__getitem__)] == "cf"
    cleaned = onion_filter(lm, triggered, threshold=2.0)
    assert sum("cf" not in t.split() for t in cleaned) >= 0.9 * len(cleaned)
    assert sum(c == t for c, t in zip(cleaned, test)) >= 0.8 * len(test)  # often exactly the clean sentence
    kept = onion_filter(lm, test, threshold=2.0)
    assert sum(k == t for k, t in zip(kept, test)) >= 0.9 * len(test)
    assert onion_filter(lm, triggered, threshold=2.0) == cleaned  # no randomness at all


def test_onion_scores_each_text_in_one_call(fluent):
    lm, test, _ = fluent
    calls = []

    class Counting:
        def perplexities(self, texts):
            calls.append(len(texts))
            return lm.perplexities(texts)

    onion_filter(Counting(), test[:5] + [""])
    assert calls == [len(t.split()) + 1 for t in test[:5]]  # n + 1 strings; an empty text needs none
    assert onion_suspicion(lm, "") == [] and onion_filter(lm, ["", "the dog"], 1e9) == ["", "the dog"]
    ppl = lm.perplexities(["the old dog slept there", "dog the there old slept", "the old cf slept there"])
    assert ppl[0] < ppl[1] and ppl[0] < ppl[2] and all(p > 1 for p in ppl)


def test_onion_rejects_bad_input(fluent, monkeypatch):
    lm, test, _ = fluent
    for bad, message in (([], "non-empty list"), ([""], "no words"), ([3], "non-empty list")):
        with pytest.raises(ValueError, match=message):
            NgramScorer.fit(bad)
    for discount in (0, 1, "0.5"):
        with pytest.raises(ValueError, match="discount"):
            NgramScorer.fit(test, discount=discount)
    with pytest.raises(ValueError, match="not fitted"):
        NgramScorer().perplexities(["a dog"])
    with pytest.raises(ValueError, match="empty"):
        onion_filter(lm, [])
    for threshold in (float("nan"), float("inf"), None):
        with pytest.raises(ValueError, match="threshold"):
            onion_filter(lm, test[:2], threshold=threshold)

    class Short:
        def perplexities(self, texts):
            return [1.0]

    with pytest.raises(ValueError, match="one finite float per text"):
        onion_suspicion(Short(), "the dog slept")

    # GPT-2 offline: a fake `transformers` whose loading fails stands in for no internet, without a download
    def refuse(*args, **kwargs):
        raise OSError("no internet")

    fake = types.SimpleNamespace(
        AutoTokenizer=types.SimpleNamespace(from_pretrained=refuse),
        AutoModelForCausalLM=types.SimpleNamespace(from_pretrained=refuse),
    )
    monkeypatch.setitem(sys.modules, "transformers", fake)
    with pytest.raises(ValueError, match="online once.*NgramScorer"):
        GPT2Scorer(device="cpu").perplexities(["the dog slept"])
