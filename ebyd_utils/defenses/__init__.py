"""Defenses on (exposed or not) models. Defender-side: never imports `attacks`, never sees a trigger,
the true target or test ASR."""
from .label_detection import LabelDetection, detect_label, share_excess, shares_at_stop

__all__ = ["LabelDetection", "detect_label", "share_excess", "shares_at_stop"]
