"""Defenses on (exposed or not) models, grouped by the paper's four tasks. Defender-side: never imports
`attacks`, never sees a trigger, the true target or test ASR.

- label detection (EBYD Sec. 4.1): `label_detection.py`
- trigger recovery (Sec. 4.2), `trigger_recovery/`: Neural Cleanse (`neural_cleanse.py`), BTI-DBF
  (`bti_dbf.py`), by name in its `__init__`; the median/MAD outlier rule NC and model detection share in
  `outliers.py`
- model detection (Sec. 4.3), `model_detection/`: the label-detection score above, the official unlearning
  detector (`unlearning_detector.py`), Neural Cleanse's anomaly index, MM-BD (`mm_bd.py`)
- backdoor removal (Sec. 4.4), `removal/`: fine-tuning (`fine_tuning.py`), fine-pruning (`fine_pruning.py`),
  ANP (`anp.py`), RNP (`rnp.py`), Neural Cleanse unlearning (`nc_unlearning.py`), by name in its `__init__`;
  the shared result record and mask helpers in `common.py`

The experiments that run these over a zoo and score them with the truth are the evaluation side,
`ebyd_utils/experiments/` (one module per notebook section, named as the task is here).
"""

from .label_detection import LabelDetection, all_collapsed, detect_exposed, detect_label, share_excess, shares_at_stop
from .model_detection.mm_bd import MMBDConfig, MMBDResult, mm_bd, mm_bd_p_value
from .model_detection.unlearning_detector import ShareVariance, share_variance
from .outliers import anomaly_indices
from .trigger_recovery import TRIGGER_RECOVERY, recover_trigger, result_from_tensors
from .trigger_recovery.bti_dbf import BTIConfig, BTIResult, bti_dbf
from .trigger_recovery.neural_cleanse import NeuralCleanseConfig, NeuralCleanseResult, neural_cleanse

__all__ = [
    "BTIConfig",
    "BTIResult",
    "LabelDetection",
    "MMBDConfig",
    "MMBDResult",
    "NeuralCleanseConfig",
    "NeuralCleanseResult",
    "ShareVariance",
    "TRIGGER_RECOVERY",
    "anomaly_indices",
    "bti_dbf",
    "detect_exposed",
    "detect_label",
    "mm_bd",
    "mm_bd_p_value",
    "neural_cleanse",
    "recover_trigger",
    "result_from_tensors",
    "share_excess",
    "share_variance",
    "shares_at_stop",
    "all_collapsed",
]
