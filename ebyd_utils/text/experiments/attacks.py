"""What each text attack reached (notebook 09; the image track's `experiments/attacks.py`): CA / ASR / RA,
poisoned rows and training seconds of every model."""

from __future__ import annotations

import pandas as pd

from ..pipeline import TextSetup, context


def model_table(setup: TextSetup, suspects, references) -> pd.DataFrame:
    """CA / ASR / RA, poisoned rows and training seconds of every model (the references too)."""
    rows = []
    for role, models in (("suspect", suspects), ("reference", references)):
        for s in models:
            r = s.record
            rows.append(
                {
                    **context(setup),
                    "model_id": s.model_id,
                    "attack": s.label,
                    "seed": s.seed,
                    "role": role,
                    "target": s.attack.target if s.attack else None,
                    "CA": r["CA"],
                    "ASR": r.get("ASR"),
                    "RA": r.get("RA"),
                    "n_train": r["n_train"],
                    "n_poisoned": r["n_poisoned"],
                    "train_seconds": r["train_seconds"],
                    "trained_on": r["hardware"],
                }
            )
    return pd.DataFrame(rows).astype({"target": "Int64"})
