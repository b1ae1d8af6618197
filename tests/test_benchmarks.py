"""`make bench` at the smoke profile: both loops run, and the table it writes names what it measured."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_runs_both_loops_and_writes_its_table(tmp_path):
    out = tmp_path / "benchmarks.csv"
    subprocess.run([sys.executable, "benchmarks/bench.py", "--profile", "smoke", "--device", "cpu",
                    "--steps", "3", "--max-epochs", "1", "--cache-dir", str(tmp_path / "cache"),
                    "--notebook-times", str(tmp_path / "absent.csv"), "--out", str(out)],
                   cwd=REPO, check=True, capture_output=True, text=True)
    table = pd.read_csv(out)
    speed = table[table.metric == "images_per_s"].set_index("loop")["value"]
    assert {"ours", "reference"} <= set(speed.index) and (speed > 0).all()
    assert set(table.profile) == {"smoke"} and table.hardware.notna().all()
