"""Input-level text defenses, defender-side: they see a model's outputs (or none) and the defender's clean
held-out texts, never a trigger, the true target or the poisoned rows.

- STRIP (`strip.py`, Gao et al., IEEE TDSC 2021, in OpenBackdoor's text form): flags inputs whose prediction
  survives heavy word replacement (low entropy);
- ONION (`onion.py`, Qi et al., EMNLP 2021): removes words whose deletion lowers a language model's
  perplexity most; the LM is GPT-2 online (`GPT2Scorer`) or a bigram LM fitted offline (`NgramScorer`).
- the token scan (`token_scan.py`, after Backdoor Token Unlearning, Jiang et al., AAAI 2025): ranks tokens by how
  far fine-tuning moved their embeddings from the public checkpoint, tests the top ones as triggers on clean
  rows (on the suspect or on its exposed copy), and resets flagged tokens to [PAD] (removal).
STRIP and ONION are model-agnostic: STRIP calls `probs_fn(list[str]) -> (N, K)` probabilities, ONION only rewrites text.
"""

from .onion import GPT2Scorer, NgramScorer, onion_filter, onion_suspicion
from .strip import strip_entropy, strip_flags, strip_threshold
from .token_scan import TokenScanConfig, embedding_drift, reset_tokens, scan

__all__ = [
    "GPT2Scorer",
    "NgramScorer",
    "onion_filter",
    "onion_suspicion",
    "strip_entropy",
    "strip_flags",
    "strip_threshold",
    "TokenScanConfig",
    "embedding_drift",
    "reset_tokens",
    "scan",
]
