"""Run many independent units, in this process or as Ray tasks, with a progress bar and a report.

    report = run_tasks(fn, context, tasks)                              # in-process, one after another (no Ray)
    report = run_tasks(fn, context, tasks, Fanout(workers=4))           # 4 Ray workers on this machine
    report = run_tasks(fn, context, tasks, Fanout(address="auto"))      # an existing Ray cluster

`fn(context, task) -> dict` computes (or loads) one unit and returns a small dict with at least `computed`
(True if it computed, False if the unit was already cached). `fn` must be a module-level function and
`context` and each `task` plain picklable values: a worker imports `fn` and receives copies, never the
driver's tensors. A task may name the `id` of a task it needs (`after`): it starts once that one is done, and
is skipped if that one failed. Units write their results to the cache themselves (`units.cached_unit`), so a
worker on another node needs the same cache folder: a shared file system mounted at the same path.

Every task runs with `threads` torch threads when given (recorded by each unit: results are bit-identical for
the same thread count, not across thread counts). A failing task does not stop the others: its row in the
report says `failed`, with the error and the task's parameters.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass

import pandas as pd
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Fanout:
    """Where units run: in this process (the default), on `workers` local Ray workers, or on the Ray cluster at
    `address`; `threads` torch threads per unit (default: cores / workers), `gpus_per_task` a GPU share."""

    workers: int = 0
    address: str | None = None
    threads: int | None = None
    gpus_per_task: float = 0.0


def run_one(fn, context, task: dict, threads: int | None = None, needed: dict | None = None) -> dict:
    """Run one task (in whatever process this is), timing it and catching its error; the thread count it ran
    with is restored afterwards, so an in-process build leaves the caller's setting as it was."""
    import torch

    if needed is not None and needed.get("status") != "done":
        return {
            "id": task["id"],
            "status": "skipped",
            "computed": False,
            "seconds": 0.0,
            "threads": 0,
            "error": f"needs {task['after']}, which {needed.get('status')}",
        }
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    start = time.perf_counter()
    try:
        result = fn(context, task)
        return {
            "id": task["id"],
            "status": "done",
            "computed": bool(result.get("computed")),
            "seconds": time.perf_counter() - start,
            "threads": torch.get_num_threads(),
            "error": "",
        }
    except Exception as err:  # reported with its parameters; the other units go on
        detail = traceback.format_exception_only(type(err), err)[-1].strip()
        return {
            "id": task["id"],
            "status": "failed",
            "computed": False,
            "seconds": time.perf_counter() - start,
            "threads": torch.get_num_threads(),
            "error": detail,
        }
    finally:
        torch.set_num_threads(before)


def run_tasks(
    fn, context, tasks: list[dict], fanout: Fanout | None = None, progress: bool = True, desc: str = "units"
) -> pd.DataFrame:
    """Run every task (see the module docstring) where `fanout` says; returns one report row per task, in the
    tasks' order: the task's own fields plus status ("done", "failed" or "skipped"), computed, seconds, threads
    and error."""
    fanout = fanout or Fanout()
    workers, address, threads, gpus_per_task = fanout.workers, fanout.address, fanout.threads, fanout.gpus_per_task
    ids = [t["id"] for t in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("task ids must be unique")
    unknown = {t["after"] for t in tasks if t.get("after")} - set(ids)
    if unknown:
        raise ValueError(f"tasks name unknown tasks in 'after': {sorted(unknown)}")
    if workers < 0 or (threads is not None and threads < 1) or gpus_per_task < 0:
        raise ValueError(
            f"workers must be >= 0 (0 = in-process), threads >= 1 and gpus_per_task >= 0; got "
            f"workers={workers}, threads={threads}, gpus_per_task={gpus_per_task}"
        )
    bar = tqdm(total=len(tasks), desc=desc, unit="unit", disable=not progress, dynamic_ncols=True)
    if workers or address:
        results = _run_ray(fn, context, tasks, workers, address, threads, gpus_per_task, bar)
    else:
        results = _run_here(fn, context, tasks, threads, bar)
    bar.close()
    by_id = {r["id"]: r for r in results}
    return pd.DataFrame([{**task, **by_id[task["id"]]} for task in tasks])


def _tick(bar, result: dict) -> None:
    bar.update(1)
    note = {"done": "computed" if result["computed"] else "cached"}.get(result["status"], result["status"].upper())
    bar.set_postfix_str(f"{result['id']}: {note}", refresh=True)
    if result["status"] == "failed":
        bar.write(f"FAILED {result['id']}: {result['error']}")


def _run_here(fn, context, tasks, threads, bar) -> list[dict]:
    done = {}
    for task in tasks:
        needed = done.get(task.get("after")) if task.get("after") else None
        done[task["id"]] = run_one(fn, context, task, threads, needed)
        _tick(bar, done[task["id"]])
    return list(done.values())


def _run_ray(fn, context, tasks, workers, address, threads, gpus_per_task, bar) -> list[dict]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:  # a cluster: ship this package to its workers (torch & co. must be installed there)
            import ebyd_utils

            ray.init(address=address, runtime_env={"py_modules": [ebyd_utils]}, logging_level="ERROR")
        else:  # this machine: `workers` task slots; each task then uses `threads` torch threads
            ray.init(
                num_cpus=workers,
                num_gpus=_local_gpus() if gpus_per_task else 0,
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=False,
            )
    threads = threads or max(1, (os.cpu_count() or 1) // max(workers, 1))
    slots = threads if address else 1
    remote = ray.remote(run_one).options(num_cpus=slots, num_gpus=gpus_per_task, max_retries=0)
    context_ref = ray.put(context)
    refs = {}
    for task in tasks:  # a task's `after` is passed as an argument: Ray starts it when that one is done
        refs[task["id"]] = remote.remote(fn, context_ref, task, threads, refs.get(task.get("after")))
    pending, results = {ref: i for i, ref in refs.items()}, []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task_id = pending.pop(ready[0])
            try:
                results.append(ray.get(ready[0]))
            except Exception as err:  # the worker itself died (killed, out of memory): only this unit is lost
                results.append(
                    {
                        "id": task_id,
                        "status": "failed",
                        "computed": False,
                        "seconds": 0.0,
                        "threads": 0,
                        "error": f"worker lost: {type(err).__name__}: {str(err).splitlines()[0]}",
                    }
                )
            _tick(bar, results[-1])
    finally:
        if started_here:
            ray.shutdown()
    return results


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()
