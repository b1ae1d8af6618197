"""The zoo's command: `python -m ebyd_utils.zoo --profile quick --workers 4` pre-builds a profile's zoo (every model
and CUL run), or with --table-only writes its table."""

from __future__ import annotations

import argparse
import ast
import sys

from ..config import PROFILES, get_profile
from ..core.fanout import Fanout
from ..pipeline import setup
from .build import build
from .table import write_table, zoo_table


# ------------------------------------------------------------------------------------------ command
def parse_overrides(items) -> dict:
    """["train.epochs=2", "zoo.seeds=(0,)"] -> {"train": {"epochs": 2}, "zoo": {"seeds": (0,)}}."""
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        section, dot, field = name.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set takes section.field=value, e.g. train.epochs=2; got {item!r}")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # a plain string, e.g. model=resnet18
        out.setdefault(section, {})[field] = value
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Pre-build a profile's zoo: every model and CUL run, cached.")
    ap.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--workers", type=int, default=0, help="Ray workers on this machine (0: in-process, no Ray)")
    ap.add_argument("--address", default=None, help="a Ray cluster's address (e.g. auto or ray://host:10001)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per unit (default: all cores in-process, cores / workers with Ray)",
    )
    ap.add_argument("--gpus-per-task", type=float, default=0.0, help="GPU share per Ray task, e.g. 0.33")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a profile setting, e.g. --set train.epochs=2 (repeatable)",
    )
    ap.add_argument("--results-dir", default="results", help="where zoo_<profile>.csv is written")
    ap.add_argument("--report", default=None, help="write the per-unit build report to this CSV")
    ap.add_argument("--table-only", action="store_true", help="write the zoo's table, build nothing")
    args = ap.parse_args(argv)
    profile = get_profile(args.profile, **parse_overrides(args.set))
    table = zoo_table(profile)
    print(f"zoo {profile.name}: {len(table)} models -> {write_table(table, profile, args.results_dir)}")
    if args.table_only:
        return 0
    run = setup(profile, args.data_dir, args.device, args.cache_dir)
    result = build(run, Fanout(args.workers, args.address, args.threads, args.gpus_per_task), table)
    if args.report:
        result.to_csv(args.report, index=False)
    counts = result["status"].value_counts().to_dict()
    print(
        f"zoo {profile.name}: {len(result)} units, {int(result['computed'].sum())} computed, "
        f"{counts.get('done', 0) - int(result['computed'].sum())} from the cache, "
        f"{counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped"
    )
    bad = result[result["status"] != "done"]
    if len(bad):
        print(bad[["id", "status", "error", "attack_params"]].to_string(index=False), file=sys.stderr)
        return 1
    return 0
