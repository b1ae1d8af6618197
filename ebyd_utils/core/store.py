"""The cache's storage, the hardware name and the tidy tables.

- Tensors are stored as safetensors (no pickled code runs on load) with JSON metadata inside the file, written
  atomically (temp file + rename); a file that fails to load is reported, deleted and rebuilt. `units.py`
  builds the one cached unit on these.
- Every artifact lives under a key that hashes *every* parameter that made it, so results of other
  parameters are never mixed.
- Result rows are tidy: one row per run and metric, with profile, dataset, hardware and seed in every row.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

ROW_KEYS = ("profile", "dataset", "hardware", "seed")  # columns every tidy row carries
COMMITTED_PROFILE = "quick"  # the profile whose tables and figures results/ and figures/ hold (committed)


def output_dirs(profile: str, results_dir="auto", figures_dir="auto", base="..") -> tuple[Path, Path]:
    """Where a run at `profile` writes its tables and figures. "auto" (the notebooks' default): base/results and
    base/figures at the committed profile (quick), base/results/<profile> and base/figures/<profile> at any other,
    so that a smoke or paper run never overwrites the committed quick files. A folder given by name is used as is."""

    def pick(folder, name: str) -> Path:
        if str(folder) != "auto":
            return Path(folder)
        return Path(base) / name if profile == COMMITTED_PROFILE else Path(base) / name / profile

    return pick(results_dir, "results"), pick(figures_dir, "figures")


def cache_key(*parts) -> str:
    """Stable 16-hex key of any JSON-able parameters (dicts sorted, tuples as lists)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


STALE_TMP_S = 3600  # a temp file this old belongs to a write that died (a unit's write takes seconds)
_swept: set = set()  # folders swept by this process


def sweep_stale(folder, older_than_s: float = STALE_TMP_S) -> list:
    """Delete the temp files (`.*.tmp`) an atomic write killed halfway left in `folder`, those older than
    `older_than_s` (a write in progress elsewhere, e.g. another Ray worker's, is younger and stays). Each folder is
    swept once per process. Returns the deleted paths."""
    folder = Path(folder)
    if folder in _swept or not folder.is_dir():
        return []
    _swept.add(folder)
    now, gone = time.time(), []
    for tmp in folder.glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                gone.append(tmp)
        except FileNotFoundError:  # another process swept it first
            pass
    return gone


def save_tensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Atomically save a dict of tensors (contiguous CPU copies) with optional JSON metadata."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"json": json.dumps(metadata, default=str)} if metadata is not None else None
    _atomic_write(Path(path), lambda tmp: save_file(cpu, tmp, metadata=meta))


def load_tensors(path, with_metadata: bool = False):
    """Load safetensors; None if absent; a corrupt file is deleted (with a warning) and None returned."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        tensors = load_file(str(path))
        if not with_metadata:
            return tensors
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("json", "null"))
        return tensors, meta
    except Exception as err:  # truncated or garbled file: rebuild it rather than trust it
        warnings.warn(f"cache file {path} is corrupt ({err}); deleting it so it is rebuilt", stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def read_record(path) -> dict | None:
    """A unit file's record (its JSON metadata) without loading its tensors; None if absent or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            record = json.loads((f.metadata() or {}).get("json", "null"))
    except Exception:  # absent, half-written or garbled: load_tensors deletes it when a unit asks for it
        return None
    return record if isinstance(record, dict) else None


# AMD families and model ranges -> microarchitecture, for CPUs whose model name is generic ("AMD EPYC"): the
# same code steps ~2x faster on Zen 5 than on Zen 4, so a time without the generation is not comparable
AMD_GENERATIONS = {
    23: ((0x00, 0x2F, "Zen/Zen+"), (0x30, 0xFF, "Zen 2")),
    25: ((0x00, 0x0F, "Zen 3"), (0x10, 0x1F, "Zen 4"), (0x20, 0x5F, "Zen 3"), (0x60, 0xAF, "Zen 4")),
    26: ((0x00, 0xFF, "Zen 5"),),
}


def _cpuinfo() -> dict:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_name(info: dict | None = None, cores: int | None = None) -> str:
    """The CPU's model name; where it is generic (no digit in it, e.g. "AMD EPYC"), with its family, model and
    generation (e.g. "AMD EPYC (Zen 4, family 25 model 17)") and AMX where it has bf16 matrix tiles (e.g. "Intel(R)
    Xeon(R) Processor (family 6 model 167, AMX)"); always with the cores this process may use."""
    info = _cpuinfo() if info is None else info
    cores = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    name = info.get("model name") or platform.processor() or platform.machine()
    details = []
    if not any(ch.isdigit() for ch in name) and "cpu family" in info:
        family, model = int(info["cpu family"]), int(info.get("model", "0"))
        generation = next((g for lo, hi, g in AMD_GENERATIONS.get(family, ()) if lo <= model <= hi), None)
        if "AMD" in name and generation:
            details.append(generation)
        details.append(f"family {family} model {model}")
        if "amx_bf16" in info.get("flags", "").split():
            details.append("AMX")  # bf16 matrix tiles: the same 2 cores train ~2x faster than without
    details.append(f"{cores} cores")
    return f"{name} ({', '.join(details)})"


def hardware_name(device=None) -> str:
    """A short, human-readable name of the hardware a result was computed on: the GPU's name, or the CPU's
    (with its generation where the model name is generic) and the threads torch uses."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()[:-1]}, {torch.get_num_threads()} threads)"


def tidy_rows(metrics: dict, **context) -> list[dict]:
    """One row per metric: context columns (must include ROW_KEYS) + metric + value."""
    missing = [k for k in ROW_KEYS if k not in context]
    if missing:
        raise ValueError(f"every result row needs {list(ROW_KEYS)}; missing {missing}")
    return [{**context, "metric": name, "value": float(value)} for name, value in metrics.items()]


def write_csv(df: pd.DataFrame, path) -> Path:
    """Write a tidy table atomically (results/ CSVs are committed, so keep them deterministic)."""
    path = Path(path)
    _atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.4g"))
    return path
