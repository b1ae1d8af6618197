"""Backdoor removal (EBYD, Li et al. 2024, Sec. 4.4): methods by name, one signature.

    REMOVAL[name] = (method, its config class); method(model, x, y, seed=..., **settings) -> RemovalResult

Each method in its own file: fine-tuning (`fine_tuning.py`), fine-pruning (`fine_pruning.py`), ANP (`anp.py`),
RNP (`rnp.py`), Neural Cleanse unlearning (`nc_unlearning.py`); the shared result record, checks and neuron masks
in `common.py`. GUIDED methods rank or mask neurons and can read that ranking off another model (`guide=`:
EBYD's exposed model) while they repair the suspect. Defender-side: nothing here receives a trigger, the true
target or ASR (NC unlearning receives the trigger *NC recovered*, which a defender has).
"""

from .anp import ANPConfig, anp
from .common import RemovalResult
from .fine_pruning import FinePruningConfig, fine_pruning
from .fine_tuning import FineTuningConfig, fine_tuning
from .nc_unlearning import NCUnlearningConfig, nc_unlearning
from .rnp import RNPConfig, rnp

REMOVAL = {
    "ft": (fine_tuning, FineTuningConfig),
    "fp": (fine_pruning, FinePruningConfig),
    "anp": (anp, ANPConfig),
    "rnp": (rnp, RNPConfig),
    "nc_unlearning": (nc_unlearning, NCUnlearningConfig),
}
GUIDED = ("fp", "anp", "rnp")  # methods that accept guide= (the model whose neurons they rank or mask)

__all__ = ["GUIDED", "REMOVAL", "RemovalResult"]
