"""STRIP for text: perturb an input many times; a triggered input keeps its prediction, so LOW entropy flags it.

Gao et al., "Design and Evaluation of a Multi-Domain Trojan Detection Method on Deep Neural Networks" (IEEE
TDSC 2021; STRIP-ViTA, the text/audio extension of STRIP), in the text form OpenBackdoor's `STRIPDefender`
implements: each input is copied `copies` times; in each copy a share of its words is replaced by the
highest-TF-IDF words of one held-out clean text (the donor); the score is the mean over the copies of the
entropy (bits) of the model's predicted distribution. A clean input's prediction drifts as its words go; a
trigger that survives keeps the target, so triggered inputs score low. The defender sets the threshold from
CLEAN held-out texts only (`strip_threshold`), so that a chosen share `frr` of clean inputs is rejected.

Model-agnostic: the model is `probs_fn(list[str]) -> (N, K)` probabilities (the softmax, not the logits).
Our differences from OpenBackdoor: exactly `round(replace_share * n)` DISTINCT positions are replaced (at
least one; OpenBackdoor draws `int(n * ratio)` positions with repetition, so fewer change and a short text may
not change at all); TF-IDF has no English stop-word list (datasets are tokenised differently) and a donor
shorter than the number of positions repeats its ranked words; the mean entropy is taken per text
(OpenBackdoor's reshape to (repeat, -1) averages copies of different texts); each text's perturbations are
seeded by the seed and the text itself, so a score never depends on the batch it came in.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import torch

from ..data import words_of


def check_texts(texts, what: str) -> list:
    texts = list(texts)
    if not texts:
        raise ValueError(f"{what} is empty; pass at least one text")
    if not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{what} must be strings")
    empty = [i for i, t in enumerate(texts) if not words_of(t)]
    if empty:
        raise ValueError(
            f"{what} has texts without words (indices {empty[:10]}); drop them first, since STRIP perturbs words"
        )
    return texts


def check_share(copies, replace_share) -> None:
    if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
        raise ValueError(f"copies must be an int >= 1 (perturbed copies per text); got {copies!r}")
    if not (isinstance(replace_share, (int, float)) and not isinstance(replace_share, bool) and 0 < replace_share <= 1):
        raise ValueError(f"replace_share must be in (0, 1], the share of words replaced; got {replace_share!r}")


def ranked_donor_words(donor_texts) -> list:
    """Each donor's distinct words by descending TF-IDF over the donors (smooth idf, as sklearn's default)."""
    docs = [Counter(words_of(t)) for t in donor_texts]
    df = Counter(w for doc in docs for w in doc)
    idf = {w: math.log((1 + len(docs)) / (1 + d)) + 1 for w, d in df.items()}
    # ties broken by the word, so the ranking (and every perturbation) is the same in every process
    return [sorted(doc, key=lambda w: (-doc[w] * idf[w], w)) for doc in docs]


def perturb(text: str, donors: list, replace_share: float, rng: random.Random) -> str:
    words = words_of(text)
    m = max(1, round(replace_share * len(words)))
    donor = donors[rng.randrange(len(donors))]
    for i, pos in enumerate(rng.sample(range(len(words)), m)):
        words[pos] = donor[i % len(donor)]
    return " ".join(words)


def call_probs(probs_fn, texts: list, batch_size: int) -> torch.Tensor:
    """probs_fn over texts in batches, checked to be (N, K) probabilities."""
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        probs = torch.as_tensor(probs_fn(chunk)).detach().double().cpu()
        if probs.ndim != 2 or probs.shape[0] != len(chunk) or probs.shape[1] < 2:
            raise ValueError(
                f"probs_fn must return a (N, K) tensor with K >= 2 for N = {len(chunk)} texts; "
                f"got shape {tuple(probs.shape)}"
            )
        if not torch.isfinite(probs).all() or (probs < 0).any() or (probs.sum(1) - 1).abs().max() > 1e-3:
            raise ValueError(
                "probs_fn must return probabilities (rows >= 0 summing to 1, e.g. the softmax of "
                "the logits), not logits"
            )
        out.append(probs)
    return torch.cat(out)


def strip_entropy(
    probs_fn, texts, donor_texts, copies: int = 5, replace_share: float = 0.5, seed: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """Per-text mean entropy (bits) of probs_fn over `copies` perturbed copies; low = suspicious. (N,) float64.

    donor_texts: the defender's held-out CLEAN texts whose words go into the copies. Defaults follow
    OpenBackdoor (5 copies, half the words); more copies give a less noisy score.
    """
    texts = check_texts(texts, "texts")
    donors = ranked_donor_words(check_texts(donor_texts, "donor_texts"))
    check_share(copies, replace_share)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
    perturbed = []
    for text in texts:
        # a string seed is hashed with sha512 by `random`: the same stream in every process
        rng = random.Random(f"strip|{seed}|{text}")
        perturbed += [perturb(text, donors, replace_share, rng) for _ in range(copies)]
    probs = call_probs(probs_fn, perturbed, batch_size)
    entropy = -torch.special.xlogy(probs, probs).sum(1) / math.log(2)  # 0 log 0 = 0
    return entropy.view(len(texts), copies).mean(1)


def check_frr(frr) -> None:
    if not (isinstance(frr, (int, float)) and not isinstance(frr, bool) and 0 < frr < 1):
        raise ValueError(
            f"frr must be in (0, 1), the share of clean inputs the defender accepts to reject; got {frr!r}"
        )


def strip_threshold(clean_entropies, frr: float = 0.05) -> float:
    """The entropy below which an input is flagged, from CLEAN held-out entropies only.

    The floor(frr * n)-th smallest clean entropy (OpenBackdoor's rule), so at most a share frr of these clean
    texts lies strictly below it (the false rejection rate the defender accepts).
    """
    check_frr(frr)
    clean = torch.as_tensor(clean_entropies, dtype=torch.float64).flatten()
    if clean.numel() == 0:
        raise ValueError("clean_entropies is empty; score held-out clean texts with strip_entropy first")
    if not torch.isfinite(clean).all():
        raise ValueError("clean_entropies holds NaN or inf; check probs_fn")
    return float(clean.sort().values[int(frr * clean.numel())])


def strip_flags(
    probs_fn,
    texts,
    clean_texts,
    frr: float = 0.05,
    copies: int = 5,
    replace_share: float = 0.5,
    seed: int = 0,
    batch_size: int = 256,
) -> torch.Tensor:
    """Which texts STRIP flags as triggered: (N,) bool, entropy < the threshold set on clean_texts at frr.

    clean_texts (the defender's held-out clean texts) are both the donors and the calibration set, as in
    OpenBackdoor; for the scores themselves call `strip_entropy` and `strip_threshold`.
    """
    check_frr(frr)  # before any model call: a bad frr should not cost a pass over the clean texts
    clean_texts = check_texts(clean_texts, "clean_texts")
    kw = dict(copies=copies, replace_share=replace_share, seed=seed, batch_size=batch_size)
    threshold = strip_threshold(strip_entropy(probs_fn, clean_texts, clean_texts, **kw), frr)
    return strip_entropy(probs_fn, texts, clean_texts, **kw) < threshold
