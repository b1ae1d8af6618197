"""Backdoor model detection (EBYD, Li et al. 2024, Sec. 4.3): one score per model, defender-side.

The exposure score itself is label detection's excess share (`..label_detection`); Neural Cleanse's anomaly
index comes from `..trigger_recovery.neural_cleanse`. Here: the official code's unlearning detector
(`unlearning_detector.py`) and MM-BD (`mm_bd.py`).
"""

from .mm_bd import MMBDConfig, MMBDResult, mm_bd, mm_bd_p_value
from .unlearning_detector import ShareVariance, share_variance

__all__ = ["MMBDConfig", "MMBDResult", "ShareVariance", "mm_bd", "mm_bd_p_value", "share_variance"]
