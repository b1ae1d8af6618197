"""The text track's evaluation side (notebook 09), named as the image sections are (`ebyd_utils/experiments/`):
a reader who knows where image model detection lives finds text model detection by the same word.

    attacks.py            CA / ASR / RA of every text model
    exposure.py           every exposure on every model: readings of the probe rows, tidy logs
    label_detection.py    the target read off exposed models (share and soft readings), with and without exposure
    trigger_recovery.py   the token scan on the suspect and on each exposed copy
    model_detection.py    exposure score and token scan as model detectors, ROC AUC
    removal.py            FT and the token reset, plain and decided on an exposed copy
    baselines.py          the input-level baselines STRIP and ONION
"""
