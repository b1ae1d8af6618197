"""Backdoor label detection read off an exposed model (EBYD, Li et al. 2024, Sec. 4.1).

After Clean Unlearning a backdoored model sends many clean inputs to its target class. A clean model
drifts too, onto some class of its own (on our small CNN often cat or deer, on generated data an arbitrary
one), so the reading is a contrast, made robust in two ways:

- *restarts*: CUL is run R times with different seeds (data order, augmentation); a label counts only as much
  as its *smallest* share over the restarts, so a drift that wanders between classes scores low while a
  backdoor target, promoted by every restart, keeps its share;
- *references*: the same is done on clean reference models, and their mean share is subtracted:

    excess_c = min over restarts of share_c(suspect) - mean over references and restarts of share_c(reference)

share_c is the share of the defender's clean probe images (never unlearned on) predicted as class c, each run
read at its own collapse point (the first CUL epoch with defense accuracy <= stop_acc). The detected label is
argmax_c excess_c, its score that excess; a label is flagged when the score reaches the threshold.

Defender's assumptions (stated, and all the defender gets): the suspect model; ~500 labelled clean images
(the defense set) plus unlabelled clean probe images; clean reference models of the same architecture and
training recipe, trained by the defender on its own clean data and exposed by the same CUL. Never the trigger,
the true target or test ASR. With no references, excess is measured against the uniform share 1/K, which a
clean model's drift can reach on its own: a weaker, stated rule, not a silent fallback.

Where ours differs from the paper/official code: the paper reads the target as the class most clean inputs go
to after one CUL run; the official model detector flags a model when the variance of its class shares exceeds
0.01. Both rules flag clean CPU-scale models too (their drift has large variance), hence restarts and
references. A weak score is reported as "not flagged (low
confidence)", and a model whose CUL never collapsed as "not exposed" -- never as "clean".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class LabelDetection:
    label: int  # most suspicious class
    score: float  # its excess share over the clean references (0..1)
    flagged: bool  # score >= threshold (and the model was exposed)
    verdict: str  # "backdoor target", "not flagged (low confidence)" or "not exposed"
    threshold: float
    excess: list = field(default_factory=list)  # per-class excess shares


def all_collapsed(logs) -> bool:
    """Whether every exposure run reached its stop rule: the condition for reading any of them (a run that never
    collapsed erased nothing, and its shares say nothing about a backdoor)."""
    return all(bool(log.attrs.get("collapsed")) for log in logs)


def shares_at_stop(log, split: str = "probe") -> torch.Tensor:
    """Class shares on `split` ("probe" or "defense") at the CUL log's collapse point (last row if none)."""
    columns = [c for c in log.columns if c.startswith(f"{split}_share_")]
    if not columns:
        raise ValueError(f"the CUL log has no {split} shares; run clean_unlearn with probe_x for 'probe'")
    stop = log.attrs.get("stop_epoch")
    row = log.loc[log["epoch"] == stop].iloc[0] if stop is not None else log.iloc[-1]
    return torch.tensor(row[columns].to_numpy(dtype=float), dtype=torch.float32)


def _as_runs(shares) -> torch.Tensor:
    """One share vector or a list of them (one per CUL restart) -> (runs, classes)."""
    if isinstance(shares, (list, tuple)):
        shares = torch.stack([torch.as_tensor(r, dtype=torch.float32) for r in shares])
    shares = torch.as_tensor(shares, dtype=torch.float32)
    shares = shares[None] if shares.ndim == 1 else shares
    if shares.ndim != 2 or len(shares) == 0:
        raise ValueError(f"shares must be a class-share vector or a list of them; got shape {tuple(shares.shape)}")
    return shares


def share_excess(shares, reference_shares=None) -> torch.Tensor:
    """Per-class excess: the smallest share over the suspect's restarts minus the references' mean share
    (a list with one entry per reference, each a vector or a list of restarts); 1/K with no references."""
    runs = _as_runs(shares)
    consistent = runs.min(0).values
    if reference_shares is None or len(reference_shares) == 0:
        return consistent - 1.0 / runs.shape[1]
    reference = torch.cat([_as_runs(r) for r in reference_shares])
    if reference.shape[1] != runs.shape[1]:
        raise ValueError(f"reference shares have {reference.shape[1]} classes, the suspect {runs.shape[1]}")
    return consistent - reference.mean(0)


def detect_label(shares, reference_shares=None, threshold: float = 0.1, exposed: bool = True) -> LabelDetection:
    """Name the backdoor target label from class shares (exposed or not; one vector or a list of restarts),
    contrasted with clean references."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}")
    excess = share_excess(shares, reference_shares)
    label = int(excess.argmax())
    score = float(excess[label])
    flagged = exposed and score >= threshold
    verdict = "backdoor target" if flagged else ("not flagged (low confidence)" if exposed else "not exposed")
    return LabelDetection(label, score, flagged, verdict, threshold, excess.tolist())


def detect_exposed(logs, reference_logs, threshold: float = 0.1, fixed: bool = False) -> LabelDetection:
    """detect_label on exposed models: the probe shares of each of the suspect's exposure restarts at its stop
    step, against each reference's restarts exposed the same way; "not exposed" unless every restart reached
    its stop rule (`fixed`: the runs had none, each is read at its last step)."""
    return detect_label(
        [shares_at_stop(log) for log in logs],
        [[shares_at_stop(log) for log in ref] for ref in reference_logs],
        threshold,
        exposed=fixed or all_collapsed(logs),
    )
