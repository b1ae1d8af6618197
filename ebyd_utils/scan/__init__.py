"""EBYD as a tool: scan a model someone else trained (Li et al. 2024, "Expose Before You Defend").

    from ebyd_utils.scan import scan
    report = scan("model.safetensors", arch="fastcnn", data="cifar10", out="scan-out")
    ebyd-scan model.safetensors --arch fastcnn --data cifar10 --out scan-out     # exit 0 clean, 1 suspected

A checkpoint (safetensors or a weights-only state dict) and a few hundred clean images in; a verdict, the
suspected label, P(backdoored) with how it was calibrated, the recovered trigger and what the scan cannot see out
(report.json, report.html, report.png). docs/scan.md explains what it compares with and what was measured.

- checkpoint.py: reading a file safely; architectures.py: the named architecture, wrapped to take [0, 1] images;
- inputs.py: the clean data and its minimum; text.py, text_scan.py: the text minimum;
- readings.py: exposure, readings, P(backdoored), trigger, blind spots; core.py: scan(); report.py, figure.py: out;
- cli.py: ebyd-scan.
"""

from .core import EXIT_CODES, scan

__all__ = ["EXIT_CODES", "scan"]
