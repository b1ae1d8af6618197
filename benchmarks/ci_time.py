"""What the CI run cost, read off its log and kept as one row of `results/ci_times.csv`, so that the suite's time
on each CPU kind is a committed number, not a sentence in a note.

    bash .ci/run 2>&1 | tee ci.log
    python benchmarks/ci_time.py ci.log --commit $(git rev-parse --short HEAD)

The row: date, commit, the CPU line `.ci/run` prints (name, family/model, cores, bf16 paths), the seconds of
`make lint` with the install it triggers, of `make test` and of the whole run, and the test counts. A log that
lacks any of these (a run cut short) is refused with what is missing: a partial run is no CI time.
A second row for the same commit and CPU replaces the first.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path

import pandas as pd

COLUMNS = ["date", "commit", "cpu", "lint_install_s", "make_test_s", "total_s", "passed", "failed", "exit"]
PATTERNS = {
    "cpu": r"^ci: CPU (.+)$",
    "lint_install_s": r"^ci: make lint took (\d+) s",
    "make_test_s": r"^ci: make test took (\d+) s",
    "exit": r"^ci: make test took \d+ s \(exit (\d+)\)",
    "total_s": r"^ci: total (\d+) s",
    "passed": r"(\d+) passed",
}


def parse_log(text: str) -> dict:
    """The CI log's numbers as one row (without date and commit); ValueError naming what the log lacks."""
    row, missing = {}, []
    for name, pattern in PATTERNS.items():
        found = re.findall(pattern, text, flags=re.MULTILINE)
        if not found:
            missing.append(name)
            continue
        row[name] = found[-1] if name == "cpu" else int(found[-1])
    if missing:
        raise ValueError(f"the CI log lacks {missing}: run `bash .ci/run` to the end and pass its whole output")
    failed = re.findall(r"(\d+) failed", text)
    row["failed"] = int(failed[-1]) if failed else 0
    return row


def record(log: Path, commit: str, table: Path, today: str | None = None) -> pd.DataFrame:
    """Append the log's row to `table` (replacing a row of the same commit and CPU); returns the table."""
    row = {"date": today or date.today().isoformat(), "commit": commit, **parse_log(log.read_text())}
    old = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=COLUMNS)
    old = old[~((old["commit"] == commit) & (old["cpu"] == row["cpu"]))]
    new = pd.concat([old, pd.DataFrame([row])], ignore_index=True)[COLUMNS]
    table.parent.mkdir(parents=True, exist_ok=True)
    new.to_csv(table, index=False)
    return new


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="the whole output of `bash .ci/run`")
    parser.add_argument("--commit", required=True, help="the commit the run tested (git rev-parse --short HEAD)")
    parser.add_argument("--table", type=Path, default=Path("results/ci_times.csv"))
    args = parser.parse_args(argv)
    table = record(args.log, args.commit, args.table)
    print(table.tail(1).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
