"""The cache and the tidy tables.

- Models and tensors are stored as safetensors (no pickled code runs on load), JSON beside them for metadata,
  written atomically (temp file + rename); a file that fails to load is reported, deleted and rebuilt.
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
import warnings
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

ROW_KEYS = ("profile", "dataset", "hardware", "seed")   # columns every tidy row carries


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
        warnings.warn(f"cache file {path} is corrupt ({err}); deleting it so it is rebuilt")
        path.unlink(missing_ok=True)
        return None


def save_json(path, obj) -> None:
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1, default=str)))


def load_json(path):
    """Load JSON; None if absent; a corrupt file is deleted and None returned."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        warnings.warn(f"cache file {path} is corrupt ({err}); deleting it so it is rebuilt")
        path.unlink(missing_ok=True)
        return None


def hardware_name(device=None) -> str:
    """A short, human-readable name of the hardware a result was computed on."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({torch.get_num_threads()} threads)"


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
