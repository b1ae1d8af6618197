"""Reading a checkpoint someone else made, without running anything it carries.

Two formats are read, and only two: a `.safetensors` file (tensors and JSON, no code by construction) and a
PyTorch state dict read by `torch.load(weights_only=True)`, whose unpickler builds tensors and plain containers
and refuses every other object. A pickle that would import or call anything (a `__reduce__` that opens a file, a
pickled `nn.Module`) is refused before any of it runs, with the command that converts it where it is trusted.

Every refusal is a ValueError that names the file and the problem: not a file, truncated or garbled, a pickle
beyond plain tensors, no tensors, or non-finite weights (NaN/inf, which would make every reading meaningless).
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import torch

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")  # where trainers nest the weights
PREFIXES = ("module.", "_orig_mod.")  # DataParallel and torch.compile wrap names with these

CONVERT_HINT = (
    "Convert it to safetensors on a machine where you trust the file, then scan the .safetensors file:\n"
    "    python -c \"import torch; from safetensors.torch import save_file; m = torch.load('MODEL.pt', "
    "weights_only=False); sd = m.state_dict() if hasattr(m, 'state_dict') else m; "
    "save_file({k: v.contiguous() for k, v in sd.items()}, 'MODEL.safetensors')\"\n"
    "(weights_only=False runs the pickle's code: do this only for a file whose origin you trust)"
)


def file_digest(path) -> str:
    """sha256 of the file (hex), the model's identity in the report."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_state_dict(path) -> dict:
    """The tensors of a checkpoint file as a flat {name: tensor} dict on the CPU (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"no model file at {path}: pass a .safetensors file or a PyTorch state dict (.pt/.pth)")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): a truncated download or copy? Fetch the file again")
    tensors = _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch(path)
    tensors = _unwrap(tensors, path)
    check_finite(tensors, path)
    return tensors


def _read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for a short or garbled header
        raise ValueError(
            f"{path} is not a readable safetensors file ({type(err).__name__}: {err}); it may be truncated or "
            "not safetensors at all (a pickle renamed?). Fetch or export it again"
        ) from err


def _read_torch(path: Path) -> dict:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"refused {path}: it is a pickle that would build objects beyond plain tensors (it names "
            f"{_first_line(err)}), and unpickling it could run code. Nothing in it was run.\n{CONVERT_HINT}"
        ) from err
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError) as err:
        raise ValueError(
            f"{path} could not be read as a PyTorch state dict ({type(err).__name__}: {_first_line(err)}); it is "
            "probably truncated or not a PyTorch file. Fetch or export it again"
        ) from err


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (useful or lines or [type(err).__name__])[0][:300]


def _unwrap(obj, path: Path) -> dict:
    """The flat state dict inside what torch.load returned: nested under a trainer's key, prefixes removed."""
    if isinstance(obj, dict):
        for key in NESTED_KEYS:
            if isinstance(obj.get(key), dict) and obj[key] and all(torch.is_tensor(v) for v in obj[key].values()):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path} holds no state dict (got {type(obj).__name__}); save model.state_dict()")
    tensors = {k: v for k, v in obj.items() if torch.is_tensor(v)}
    if not tensors:
        raise ValueError(
            f"{path} holds a dict without tensors (keys {sorted(obj)[:8]}); save model.state_dict(), or nest it "
            f"under one of {list(NESTED_KEYS)}"
        )
    out = {}
    for name, value in tensors.items():
        for prefix in PREFIXES:
            name = name.removeprefix(prefix)
        out[name] = value
    return out


def check_finite(tensors: dict, path) -> None:
    """A clear error if any floating tensor holds NaN or inf."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(
            f"{path} has non-finite weights (NaN or inf) in {len(bad)} tensor(s), e.g. {bad[:3]}: the training "
            "diverged or the file is damaged; no reading of such a model means anything"
        )
