"""ONION: remove the words whose deletion makes a sentence much more fluent, before it reaches the model.

Qi et al., "ONION: A Simple and Effective Defense Against Textual Backdoor Attacks" (EMNLP 2021). The
suspicion of word i is f_i = p_0 - p_i, with p_0 the perplexity of the sentence and p_i that of the sentence
without word i; words with f_i > threshold are removed. An inserted rare trigger word ("cf") is an outlier
that a language model finds unlikely, so deleting it lowers the perplexity most.

The language model is pluggable: any object with `perplexities(list[str]) -> list[float]`.
- `GPT2Scorer`: the paper's GPT-2 through `transformers` (downloads the model once; OpenBackdoor loads "gpt2");
- `NgramScorer`: our OFFLINE stand-in, a word-bigram LM fitted on the defender's clean texts.
Words are whitespace tokens, as in `ebyd_utils.text.attacks.base`. Our differences from OpenBackdoor's
`ONIONDefender`: a word is removed when f_i > threshold as in the paper (OpenBackdoor: >=); GPT-2 scores
"<bos> text <eos>" with padding masked out (OpenBackdoor scores the text alone, pads included, so the first
word is never scored and padded texts' perplexities are off); one-word texts are scored like any other
(OpenBackdoor drops them).
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from ..data import words_of

UNK, BOS, EOS = "<unk>", "<s>", "</s>"


class NgramScorer:
    """Word-bigram LM with interpolated Kneser-Ney smoothing (Chen & Goodman 1998), fitted on clean texts.

    Our offline stand-in for GPT-2 (this machine has no internet; tests and quick runs use it). It knows only
    the defender's clean texts, so it is much weaker at fluency than GPT-2 (clean words it has rarely seen
    also look suspicious; pick the threshold on clean texts), but a rare inserted word is unseen or nearly so,
    and deleting it still lowers the perplexity most. Words are lowercased (fewer, denser counts); an unseen
    word gets the uniform share that ends the Kneser-Ney recursion, so no perplexity is infinite.
    """

    def __init__(self, discount: float = 0.75):
        if not (isinstance(discount, (int, float)) and not isinstance(discount, bool) and 0 < discount < 1):
            raise ValueError(f"discount must be in (0, 1) (0.75 is the usual choice); got {discount!r}")
        self.discount = float(discount)
        self.fitted = False

    @classmethod
    def fit(cls, clean_texts, discount: float = 0.75) -> "NgramScorer":
        """Count bigrams of the defender's clean texts (each framed by <s> and </s>)."""
        clean_texts = list(clean_texts)
        if not clean_texts or not all(isinstance(t, str) for t in clean_texts):
            raise ValueError("NgramScorer.fit needs a non-empty list of clean texts (strings)")
        if not any(words_of(t) for t in clean_texts):
            raise ValueError("NgramScorer.fit: the clean texts hold no words")
        self = cls(discount)
        self.bigrams = Counter(pair for t in clean_texts for pair in pairs(tokens(t)))
        self.context = Counter()  # c(v): how often v starts a bigram
        self.followers = Counter()  # N1+(v .): distinct words after v
        self.histories = Counter()  # N1+(. w): distinct words before w
        for (v, w), c in self.bigrams.items():
            self.context[v] += c
            self.followers[v] += 1
            self.histories[w] += 1
        self.types = len(self.bigrams)  # N1+(. .)
        self.vocab = len(self.histories) + 1  # every word seen after a context, and <unk>
        self.fitted = True
        return self

    def continuation(self, w: str) -> float:
        # lower order: how many contexts w completes, interpolated with the uniform over vocab + <unk>
        d = self.discount
        return (max(self.histories[w] - d, 0) + d * len(self.histories) / self.vocab) / self.types

    def prob(self, v: str, w: str) -> float:
        c = self.context[v]
        if c == 0:  # unseen context (an unseen word): the lower order alone
            return self.continuation(w)
        d = self.discount
        return max(self.bigrams[(v, w)] - d, 0) / c + d * self.followers[v] / c * self.continuation(w)

    def perplexities(self, texts) -> list:
        """exp(mean negative log-probability) over the words and </s> of each text."""
        if not self.fitted:
            raise ValueError("NgramScorer is not fitted; build it with NgramScorer.fit(clean_texts)")
        out = []
        for text in texts:
            logp = [math.log(self.prob(v, w)) for v, w in pairs(tokens(text))]
            out.append(math.exp(-sum(logp) / len(logp)))
        return out


def tokens(text: str) -> list:
    return [BOS] + [w.lower() for w in words_of(text)] + [EOS]


def pairs(seq: list) -> list:
    return list(zip(seq, seq[1:]))


class GPT2Scorer:
    """Perplexities from a causal LM of the hub (the paper's GPT-2), loaded on first use; needs `transformers`.

    Each text is scored as "<bos> text <eos>" (GPT-2 uses <|endoftext|> for both), so the first word and the
    end count and an empty text still has a perplexity; texts longer than max_length tokens are cut (words
    beyond it then get suspicion 0).
    """

    def __init__(self, model_name: str = "gpt2", device=None, batch_size: int = 32, max_length: int = 512):
        if not isinstance(batch_size, int) or batch_size < 1 or not isinstance(max_length, int) or max_length < 2:
            raise ValueError(
                f"batch_size must be an int >= 1 and max_length an int >= 2; got {batch_size!r}, {max_length!r}"
            )
        self.model_name, self.batch_size, self.max_length = model_name, batch_size, max_length
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = self.lm = None

    def load(self) -> None:
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            self.lm = AutoModelForCausalLM.from_pretrained(self.model_name).to(self.device).eval()
        except Exception as err:  # no transformers, offline, or an unknown name: say what else works
            raise ValueError(
                f"could not load {self.model_name!r} ({type(err).__name__}: {err}). GPT2Scorer needs "
                "`transformers` and to be online once (the model is then cached); offline, use "
                "NgramScorer.fit(clean_texts) instead"
            ) from err
        tok = self.tokenizer
        self.bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self.eos = tok.eos_token_id if tok.eos_token_id is not None else tok.bos_token_id
        if self.bos is None:
            raise ValueError(f"{self.model_name!r} has neither a bos nor an eos token; choose a causal LM that does")

    @torch.no_grad()
    def perplexities(self, texts) -> list:
        if self.lm is None:
            self.load()
        texts, out = list(texts), []
        for start in range(0, len(texts), self.batch_size):
            chunk = self.tokenizer(texts[start : start + self.batch_size], add_special_tokens=False)["input_ids"]
            ids = [([self.bos] + seq + [self.eos])[: self.max_length] for seq in chunk]
            width = max(map(len, ids))
            batch = torch.tensor([seq + [self.eos] * (width - len(seq)) for seq in ids], device=self.device)
            mask = torch.tensor([[1] * len(seq) + [0] * (width - len(seq)) for seq in ids], device=self.device)
            logits = self.lm(input_ids=batch, attention_mask=mask).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
            keep = mask[:, 1:].float()  # padding is never a target
            out += torch.exp((nll * keep).sum(1) / keep.sum(1)).tolist()
        return out


def onion_suspicion(scorer, text: str) -> list:
    """f_i = perplexity(text) - perplexity(text without word i), one per whitespace word (one scorer call)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string; got {type(text).__name__}")
    words = words_of(text)
    if not words:
        return []
    variants = [" ".join(words)] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    ppl = [float(p) for p in scorer.perplexities(variants)]
    if len(ppl) != len(variants) or not all(math.isfinite(p) for p in ppl):
        raise ValueError(
            f"scorer.perplexities must return one finite float per text; got {len(ppl)} values "
            f"for {len(variants)} texts"
        )
    return [ppl[0] - p for p in ppl[1:]]


def onion_filter(scorer, texts, threshold: float = 0.0) -> list:
    """Each text without its words of suspicion > threshold (word order kept; a text may become empty).

    threshold: the paper tunes it on held-out clean data; OpenBackdoor's default is 0. Its scale is the
    scorer's perplexity, so a threshold for GPT-2 does not carry over to NgramScorer.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty; pass at least one text")
    if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and math.isfinite(threshold)):
        raise ValueError(
            f"threshold must be a finite number (perplexity units; 0 is OpenBackdoor's); got {threshold!r}"
        )
    out = []
    for text in texts:
        scores = onion_suspicion(scorer, text)
        out.append(" ".join(w for w, f in zip(words_of(text), scores) if not f > threshold))
    return out
