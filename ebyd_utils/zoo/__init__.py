"""The zoo as data: which models a profile trains, as a table of model specs, and the units that build them.

    table = zoo_table(profile)                               # one row per model; results/zoo_<profile>.csv
    suspects = models(profile, data, table.query("role == 'suspect' and seed == 0"), cache_dir)
    report = build(profile, data_dir="data", workers=4)      # every unit of the zoo, fanned out over Ray

    python -m ebyd_utils.zoo --profile quick --workers 4     # the same from a shell, with a progress bar

A row is everything that makes a model: model_id (its one identity in every table), role ("suspect": one model
per attack and seed, the rows of notebooks 01-04; "drawn": the model-detection zoo's extra clean models and
backdoored ones with drawn triggers, targets and rates, from notebook 05 on; "reference": the defender's clean
reference models), architecture, attack ("clean" or a registry name), target, rate, seed and attack_params (JSON
of every parameter of the attack, so the row alone rebuilds it). Notebooks, tests and benchmarks ask for
models by rows, and every section reuses the same cached models. The profile's `zoo` section says which rows
exist (`config.ZooConfig`); its `detection.n_reference` how many references.

The units of a zoo are its models and their Clean Unlearning runs (`detection.restarts` per model, the first
with the evaluation monitor on DEFAULT_MONITOR_SIZE test images, as notebooks 02 and 03 ask for them), so a
pre-built zoo leaves the notebooks nothing to compute.
"""

from .build import build, exposures, models, references, run_task, unit_keys, zoo_tasks
from .draws import DRAWN_SEED_OFFSET, draw_attack, drawn_rows
from .table import REFERENCE_SEED_OFFSET, TABLE_COLUMNS, attack_of, section_rows, write_table, zoo_table

__all__ = [
    "DRAWN_SEED_OFFSET",
    "REFERENCE_SEED_OFFSET",
    "TABLE_COLUMNS",
    "attack_of",
    "build",
    "draw_attack",
    "drawn_rows",
    "exposures",
    "models",
    "references",
    "run_task",
    "section_rows",
    "unit_keys",
    "write_table",
    "zoo_table",
    "zoo_tasks",
]
