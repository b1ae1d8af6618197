"""`scan()`: one model file someone else trained, a few hundred clean images, one answer with its uncertainty.

    from ebyd_utils.scan import scan
    report = scan("model.safetensors", arch="fastcnn", data="cifar10", out="scan-out")   # report.json, report.html

Stages, one progress line each: load the model (safe formats only, checked), load the clean data (checked), expose
(CUL restarts), references (where they fit), read (labels, score, P(backdoored)), trigger (Neural Cleanse on the
flagged label), write. Everything is computed before anything is written: a failure leaves the output folder as
it was, and the report lands file by file through atomic renames, report.json last. Nothing is written outside the
output folder but the cache (the references' units, under cache_dir).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict

import torch

from ..config import get_profile
from ..train import pick_device
from . import readings as rd
from .architectures import TEXT, ModelSpec, build_image_model, check_forward, check_spec
from .checkpoint import file_digest, read_state_dict
from .inputs import image_data
from .report import assemble, write_outputs

EXIT_CODES = {"clean": 0, "suspected": 1, "inconclusive": 3}  # 2: an error (the CLI's)


class Stages:
    """One progress line per stage (to `log`), and the seconds each took."""

    def __init__(self, log, total: int):
        self.log, self.total, self.seconds, self.k = log, total, {}, 0
        self.start = time.perf_counter()

    def __call__(self, name: str, what: str):
        self.k += 1
        self.log(f"[scan {self.k}/{self.total}] {name}: {what}")
        self._name, self._t = name, time.perf_counter()
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.seconds[self._name] = round(time.perf_counter() - self._t, 2)

    def total_seconds(self) -> float:
        return round(time.perf_counter() - self.start, 2)


def auto_profile(arch: str, data) -> str:
    """The profile whose CUL suits the architecture's size: smoke on generated data, quick for our FastCNN,
    paper (ResNet-18's official CUL: Adam 1e-5, BN on running statistics) for ResNets and torchvision models."""
    if str(data) == "synthetic":
        return "smoke"
    if arch == TEXT:
        return "quick"
    return "quick" if arch == "fastcnn" else "paper"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def scan(
    model_path,
    arch: str = "fastcnn",
    data="cifar10",
    out="scan-report",
    *,
    n: int | None = None,
    num_classes: int | None = None,
    input_size: int = 32,
    mean=None,
    std=None,
    class_names=None,
    widths=None,
    stem_width: int | None = None,
    activation: str = "gelu",
    cifar_stem: bool = False,
    profile: str = "auto",
    references: str = "auto",
    device: str = "cpu",
    data_dir="data",
    cache_dir="cache",
    seed: int = 0,
    log=_stderr,
) -> dict:
    """Scan one model file (see the module docstring and docs/scan.md); returns the report written to
    out/report.json. Raises ValueError, naming the problem, on any bad input, before anything is written."""
    if references not in ("auto", "train", "none"):
        raise ValueError(f"references must be 'auto', 'train' or 'none'; got {references!r}")
    if arch == TEXT:
        from .text_scan import scan_text

        return scan_text(model_path, data, out, n, num_classes, class_names, profile, device, seed, log)
    stages = Stages(log, 7)
    device = pick_device(device)
    name = auto_profile(arch, data) if profile == "auto" else profile
    prof = get_profile(name)
    with stages("load", f"{model_path} as {arch}"):
        state = read_state_dict(model_path)
        digest = file_digest(model_path)
    with stages("data", f"clean images from {data}"):
        clean = image_data(data, prof, input_size, n, class_names, data_dir, cache_dir, seed)
        k = _class_count(num_classes, clean)
        spec = ModelSpec(arch, k, input_size, _tuple(mean), _tuple(std), _tuple(widths, int), stem_width,
                         activation, cifar_stem)  # fmt: skip
        check_spec(spec)
        model = build_image_model(spec, state).to(device)
        check_forward(model, spec)
        clean = _on(clean, device)
        acc = rd.clean_accuracy(model, clean)
        rd.check_accuracy(acc, k, _hint(spec))
    with stages("expose", f"Clean Unlearning, {prof.detection.restarts} restarts (profile {name})"):
        logs = rd.expose_runs(model, clean, prof.cul, prof.detection.restarts)
    why_not = _why_no_references(references, prof, clean, spec, device)
    ref_logs, ref_record = None, {"used": False, "why_not": why_not}
    with stages("references", why_not or f"{prof.detection.n_reference} clean references, recipe of {name}"):
        if not why_not:
            ref_logs, ref_record = rd.reference_logs(prof, clean, data_dir, cache_dir, device)
            ref_record["used"] = True
    with stages("read", "label detection and the model-level score"):
        readings = _readings(logs, ref_logs, prof, name)
        decide = readings.get(rd.default_reading(name)) or readings["reference-free"]
        p, calibration = rd.probability(decide.score, name, decide.name)
    trigger = None
    with stages("trigger", f"Neural Cleanse on label {decide.label}" if decide.flagged else "nothing flagged"):
        if decide.flagged:
            trigger = rd.recover_trigger(model, clean.probe_x, decide.label, prof.recovery.nc_epochs, seed)
    with stages("write", f"report to {out}"):
        report = assemble(
            verdict=_verdict(decide, logs),
            decide=decide,
            readings=readings,
            p=p,
            calibration=calibration,
            logs=logs,
            ref_logs=ref_logs,
            ref_record=ref_record,
            trigger=trigger,
            clean=clean,
            model_info=_model_info(model_path, digest, spec, model, acc),
            profile=prof,
            device=device,
        )
        report["seconds"] = {**stages.seconds, "total": stages.total_seconds()}
        write_outputs(out, report, logs, ref_logs, trigger, clean)
    log(f"[scan] verdict: {report['verdict']} -- {report['summary']}")
    return report


def _tuple(value, kind=float):
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    return tuple(kind(v) for v in value)


def _on(clean, device):
    clean.defense_x, clean.defense_y, clean.probe_x = (t.to(device) for t in (clean.defense_x, clean.defense_y,
                                                                              clean.probe_x))  # fmt: skip
    return clean


def _class_count(num_classes, clean) -> int:
    if num_classes is not None and num_classes != clean.num_classes:
        raise ValueError(
            f"wrong class count: num_classes is {num_classes} but the data has {clean.num_classes} classes "
            f"{clean.classes[:12]}; pass class_names (all the model's classes, in its label order, as many as "
            "num_classes) so that the class folders map onto its labels"
        )
    return clean.num_classes


def _hint(spec: ModelSpec) -> str:
    if spec.arch == "fastcnn":
        return "the activation (gelu or relu), the class order and the input size"
    return "the input size, mean/std (the model's normalisation), the class order and cifar_stem"


def _why_no_references(choice: str, prof, clean, spec: ModelSpec, device) -> str:
    """'' when the scan trains (or loads) the profile's references, else why not."""
    if choice == "none":
        return "not asked for (references='none')"
    unfit = rd.references_fit(prof, clean.classes, spec.input_size)
    if unfit:
        if choice == "train":
            raise ValueError(f"references='train' cannot serve this model: {unfit}; use references='none'")
        return unfit
    if choice == "auto" and prof.train.model != "fastcnn" and torch.device(device).type == "cpu":
        return f"the {prof.name} references ({prof.train.model}, {prof.train.epochs} epochs) are GPU work"
    return ""


def _readings(logs, ref_logs, prof, name: str) -> dict:
    out = {"reference-free": rd.read("reference-free", logs, prof.detection.threshold, None, "uniform 1/K")}
    if ref_logs is not None:
        contrast = f"mean share of {len(ref_logs)} clean references (recipe of profile {name})"
        out["references"] = rd.read("references", logs, prof.detection.threshold, ref_logs, contrast)
    return out


def _verdict(decide, logs) -> str:
    if not rd.exposed(logs):
        return "inconclusive"
    return "suspected" if decide.flagged else "clean"


def _model_info(path, digest: str, spec: ModelSpec, model, acc: float) -> dict:
    norm = getattr(model, "normalize", None)
    return {
        "file": str(path),
        "sha256": digest,
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()},
        "normalisation": None
        if norm is None
        else {"mean": norm.mean.flatten().tolist(), "std": norm.std.flatten().tolist()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "clean_accuracy": round(acc, 4),
    }
