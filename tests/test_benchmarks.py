"""`make bench` at the smoke profile: both loops and both zoo builds run, and the table names what it measured."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ebyd_utils.expose import EXPOSURES

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_runs_both_loops_and_writes_its_table(tmp_path, cache_dir):
    # a test of the bench's mechanics, not of its numbers: the smoke profile cut to budgets of a step or two (one
    # training epoch, 3 CUL epochs, 2 NC epochs, ...), which took the run from 254 s to 116 s on a 2-core Zen 3
    # (Ray's start-up is most of what is left); its zoo-build part times units built from an empty cache of its own
    tiny = ["train.epochs=1", "cul.epochs=3", "recovery.nc_epochs=2", "recovery.bti_generator_steps=5"]
    tiny += ["model_detection.mmbd_steps=5", "model_detection.mmbd_starts=1"]
    tiny += ["removal.finetune_epochs=1", "removal.anp_iterations=5"]
    out = tmp_path / "benchmarks.csv"
    subprocess.run(
        [
            sys.executable,
            "benchmarks/bench.py",
            "--profile",
            "smoke",
            "--device",
            "cpu",
            "--steps",
            "3",
            "--max-epochs",
            "1",
            "--cache-dir",
            str(cache_dir),
            "--zoo-models",
            "1",
            "--notebook-times",
            str(tmp_path / "absent.csv"),
            "--out",
            str(out),
            *[arg for setting in tiny for arg in ("--set", setting)],
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    table = pd.read_csv(out)
    speed = table[table.metric == "images_per_s"].set_index("loop")["value"]
    assert {"ours", "reference"} <= set(speed.index) and (speed > 0).all()
    efficiency = table[table.benchmark == "step_efficiency"].set_index("metric")["value"]
    assert efficiency["gflop_per_step"] > 0 and efficiency["peak_gflops"] > 0
    assert 0 < efficiency["share_of_peak"] < 1.5  # counted FLOPs over a measured peak: a share, not a guess
    assert set(table.profile) == {"smoke"} and table.hardware.notna().all()
    cul_epochs = table[(table.benchmark == "cul") & (table.metric == "epochs")]["value"]
    assert len(cul_epochs) == 1 and cul_epochs.iloc[0] <= 3  # the --set budgets reached the run
    zoo = table[table.benchmark == "zoo_build"].set_index(["loop", "metric"])["value"]
    assert zoo["in-process", "units"] == zoo["ray x2", "units"] == 3  # 1 model + its 2 CUL restarts
    assert zoo["in-process", "seconds"] > 0 and zoo["ray x2", "threads_per_unit"] == 1
    recovery = table[table.benchmark == "trigger_recovery"].set_index("loop")["value"]
    assert set(recovery.index) == {"nc", "bti"} and (recovery > 0).all()  # seconds per model, each method
    detection = table[table.benchmark == "model_detection"].set_index("loop")["value"]
    assert set(detection.index) == {"exposure", "unlearning", "nc", "mmbd"} and (detection > 0).all()
    removal = table[table.benchmark == "removal"].set_index("loop")["value"]
    assert set(removal.index) == {"ft", "fp", "anp", "rnp", "nc_unlearning"} and (removal > 0).all()
    exposure = table[table.benchmark == "exposure"].set_index(["loop", "metric"])["value"]
    assert set(exposure.xs("seconds_per_model", level="metric").index) == set(EXPOSURES)  # notebook 07's methods
    assert (exposure.xs("seconds_per_model", level="metric") > 0).all()
    assert (exposure.xs("steps", level="metric") >= 1).all()  # each ran at least one epoch or level


CI_LOG = """ci: CPU Intel(R) Xeon(R) Processor, family 6 model 167, 2 cores, avx512_bf16: yes, amx_bf16: yes
ci: make lint took 111 s
........ [100%]
482 passed, 2 deselected, 1 warning in 783.43s (0:13:03)
ci: make test took 788 s (exit 0)
ci: total 911 s
"""


def test_a_ci_log_becomes_one_row_and_a_cut_log_is_refused(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import ci_time

    log, table = tmp_path / "ci.log", tmp_path / "ci_times.csv"
    log.write_text(CI_LOG)
    ci_time.record(log, "abc1234", table, today="2026-12-08")
    row = pd.read_csv(table).iloc[0]
    assert (row["lint_install_s"], row["make_test_s"], row["total_s"], row["passed"], row["failed"]) == (
        111,
        788,
        911,
        482,
        0,
    )
    assert row["cpu"].startswith("Intel(R) Xeon(R) Processor, family 6 model 167") and row["exit"] == 0
    log.write_text(CI_LOG.replace("482 passed", "3 failed, 479 passed").replace("exit 0", "exit 2"))
    ci_time.record(log, "abc1234", table, today="2026-12-08")  # the same commit and CPU: replaced, not added
    again = pd.read_csv(table)
    assert len(again) == 1 and (again.iloc[0]["failed"], again.iloc[0]["exit"]) == (3, 2)
    log.write_text(CI_LOG.split("ci: make test took")[0])  # killed mid-suite
    with pytest.raises(ValueError, match=r"lacks \['make_test_s', 'exit', 'total_s'\]"):
        ci_time.record(log, "def5678", table)
