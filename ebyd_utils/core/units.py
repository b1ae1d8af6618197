"""One cached unit: every expensive result -- a trained suspect, an exposure, one defense run on one model -- is
a pure function of its parameters, stored under a key of all of them, and computed at most once.

    unit = cached_unit("model", params, compute, cache_dir, device=device, label="badnets seed 0")
    unit.tensors, unit.record, unit.computed

- **key**: `cache_key(kind, params)`, a hash of every parameter, so results of other parameters are never mixed;
- **load**: one safetensors file per unit (tensors only: loading never runs pickled code), its metadata the
  unit's record as JSON; a file that fails to load, or whose record names another kind or key, is deleted and
  computed again;
- **compute**: `compute()` returns (tensors, info), a dict of tensors and a JSON-able dict (metrics, logs);
- **save**: atomic (temp file + rename), so a run killed halfway leaves whole units or nothing, and the next
  run recomputes only what is missing; several processes may fill one cache folder (the last rename wins, and
  both wrote the same parameters);
- **record**: what made the unit: kind, key, params, info, seconds, own_seconds (seconds less those of the
  units computed inside its compute, e.g. a removal evaluation that builds its repair unit: summing own_seconds
  counts each second once), hardware, threads, device, the versions of this package and of torch, and when it
  finished.

Deliberately *not* in the key: the hardware and the thread count. They change the last bits of a float result
(a CPU's math library splits reductions by thread) but not what was asked for, and keying on them would make a
cache built by 4 workers useless to the notebooks that read it. The record names both; results are bit-identical
for the same parameters, CPU generation and threads per unit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from .. import __version__
from .progress import report
from .store import cache_key, hardware_name, load_tensors, save_tensors, sweep_stale

_computing = threading.local()  # per thread: the seconds of nested units each computing unit has seen so far


def _nested_stack() -> list:
    if not hasattr(_computing, "stack"):
        _computing.stack = []
    return _computing.stack


@dataclass
class Unit:
    kind: str
    key: str
    path: Path
    tensors: dict  # name -> tensor (on the CPU)
    record: dict  # what made it; record["info"] is what compute() returned beside the tensors
    computed: bool  # True if this call computed it, False if it came from the cache

    @property
    def info(self) -> dict:
        return self.record["info"]


def unit_path(kind: str, params: dict, cache_dir) -> tuple[str, Path]:
    """The key and file of a unit: cache_dir/<kind>/<key>.safetensors."""
    if not kind.isidentifier():
        raise ValueError(f"a unit kind is a plain name (letters, digits, _); got {kind!r}")
    key = cache_key(kind, params)
    return key, Path(cache_dir) / kind / f"{key}.safetensors"


def load_unit(kind: str, params: dict, cache_dir) -> Unit | None:
    """The cached unit, or None if it is absent or unreadable (an unreadable file is deleted, with a warning)."""
    key, path = unit_path(kind, params, cache_dir)
    loaded = load_tensors(path, with_metadata=True)
    if loaded is None:
        return None
    tensors, record = loaded
    if not isinstance(record, dict) or record.get("key") != key or record.get("kind") != kind:
        import warnings

        warnings.warn(
            f"cache file {path} holds no record of unit {kind}/{key}; deleting it so it is rebuilt", stacklevel=2
        )
        path.unlink(missing_ok=True)
        return None
    return Unit(kind, key, path, tensors, record, computed=False)


def cached_unit(
    kind: str, params: dict, compute: Callable[[], tuple[dict, dict]], cache_dir, device="cpu", label: str = ""
) -> Unit:
    """Load unit (kind, params) from cache_dir, or compute, record and save it (see the module docstring).

    `params` must hold every parameter that decides the result (JSON-able: numbers, strings, lists, dicts, or
    keys of other units); `label` names the unit in progress lines."""
    cached = load_unit(kind, params, cache_dir)
    if cached is not None:
        return cached
    key, path = unit_path(kind, params, cache_dir)
    sweep_stale(path.parent)  # what a killed run left half-written: never read, deleted once it is stale
    report(f"  {kind} {label or key}: computing")
    stack = _nested_stack()
    stack.append(0.0)
    start = time.perf_counter()
    try:
        tensors, info = compute()
    finally:
        seconds = time.perf_counter() - start
        nested = stack.pop()
    if stack:
        stack[-1] += seconds  # the enclosing unit's compute includes this one
    record = {
        "kind": kind,
        "key": key,
        "params": params,
        "info": info,
        "seconds": seconds,
        "own_seconds": seconds - nested,
        "hardware": hardware_name(device),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "versions": {"ebyd_utils": __version__, "torch": torch.__version__},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    save_tensors(path, tensors, metadata=record)
    report(f"  {kind} {label or key}: done in {seconds:.0f} s")
    return Unit(kind, key, path, {k: v.detach().cpu() for k, v in tensors.items()}, record, computed=True)
