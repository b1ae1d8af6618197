"""The evaluation side: one module per notebook section, named as the notebook is, so notebook 0N and its module
are found by the same word. Each runs the defender's methods (`attacks/`, `expose/`, `defenses/`) over the zoo's
models, adds the truth the defender never sees (target, trigger, ASR) and writes the section's tables.

    01_attacks            -> attacks.py            CA / ASR / RA per model and attack
    02_clean_unlearning   -> exposure.py           the CUL log in tidy form
    03_label_detection    -> label_detection.py    the target read off exposed models, with and without CUL
    04_trigger_recovery   -> trigger_recovery.py   NC / BTI-DBF with and without CUL (+ trigger_metrics.py)
    05_model_detection    -> model_detection.py    one score per model, ROC AUC over the zoo
    06_backdoor_removal   -> removal.py            FT / FP / ANP / RNP / NC unlearning, plain and guided
    07_exposure_methods   -> exposure_methods.py   the other exposures beside CUL (+ exposure_units.py)
    08_ablations          -> ablations.py          one sweep at a time (+ feature_view.py)
    10_claims             -> claims.py             every claim with its effect, interval, n and verdict
    12_low_poison_rates   -> low_rate.py           where exposure stops seeing: rate x trigger x seed

The text track mirrors these names in `ebyd_utils/text/experiments/`.
"""
