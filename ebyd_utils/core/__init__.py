"""What every section stands on, and nothing above it: the store (`store.py`: cache keys, safetensors with their
record, tidy CSVs, the hardware name), the one cached unit (`units.py`), fan-out over Ray (`fanout.py`), the
progress channel (`progress.py`) and the metrics every section judges with (`metrics.py`: ROC AUC and its
bootstrap interval, TPR at a fixed FPR, calibration, DER). Nothing here imports data, models, attacks or
defenses."""
