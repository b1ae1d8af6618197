"""Defenses on (exposed or not) models. Defender-side: never imports `attacks`, never sees a trigger,
the true target or test ASR.

- label detection (EBYD Sec. 4.1): `label_detection.py`
- trigger recovery (Sec. 4.2): Neural Cleanse (`neural_cleanse.py`), BTI-DBF (`bti_dbf.py`), by name in
  `trigger_recovery.py`; the median/MAD outlier rule they share in `outliers.py`
- model detection (Sec. 4.3): the label-detection score above, the official unlearning detector
  (`unlearning_detector.py`), Neural Cleanse's anomaly index, MM-BD (`mm_bd.py`)
- backdoor removal (Sec. 4.4), each method in its own module (import from it; not re-exported here, since the
  functions share their modules' names): fine-tuning (`fine_tuning.py`), fine-pruning (`fine_pruning.py`), ANP
  (`anp.py`), RNP (`rnp.py`), Neural Cleanse unlearning (`nc_unlearning.py`); the shared result and mask
  helpers in `removal_common.py`
"""
from .bti_dbf import BTIConfig, BTIResult, bti_dbf
from .label_detection import LabelDetection, detect_label, share_excess, shares_at_stop
from .mm_bd import MMBDConfig, MMBDResult, mm_bd, mm_bd_p_value
from .neural_cleanse import NeuralCleanseConfig, NeuralCleanseResult, neural_cleanse
from .outliers import anomaly_indices
from .trigger_recovery import TRIGGER_RECOVERY, recover_trigger, result_from_tensors
from .unlearning_detector import ShareVariance, share_variance

__all__ = ["BTIConfig", "BTIResult", "LabelDetection", "MMBDConfig", "MMBDResult", "NeuralCleanseConfig",
           "NeuralCleanseResult", "ShareVariance", "TRIGGER_RECOVERY", "anomaly_indices", "bti_dbf", "detect_label",
           "mm_bd", "mm_bd_p_value", "neural_cleanse", "recover_trigger", "result_from_tensors", "share_excess",
           "share_variance", "shares_at_stop"]
