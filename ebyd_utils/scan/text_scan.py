"""The text scan (`scan(..., arch="hf-text")`): the same stages as for images, with what text cannot have left out
and said so (scan/text.py: no references, no calibrated probability, no trigger recovery)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ..text.config import get_text_profile
from ..train import pick_device
from . import readings as rd
from .checkpoint import file_digest
from .report import assemble, write_outputs
from .text import load_text_model, text_cul, text_data


def scan_text(folder, data, out, n, num_classes, class_names, profile, device, seed, log) -> dict:
    from .core import Stages

    stages = Stages(log, 5)
    device = pick_device(device)
    name = "quick" if profile == "auto" else profile
    get_text_profile(name)  # an unknown profile fails here, before any work
    with stages("load", f"{folder} as a Hugging Face text classifier"):
        model, tokenizer, labels = load_text_model(folder, num_classes)
        model = model.to(device)
    with stages("data", f"clean texts from {data}"):
        clean = text_data(data, tokenizer, labels, name, n, class_names, seed)
        clean.defense_x, clean.defense_y, clean.probe_x = (
            clean.defense_x.to(device),
            clean.defense_y.to(device),
            clean.probe_x.to(device),
        )
        acc = rd.clean_accuracy(model, clean)
        rd.check_accuracy(acc, labels, "that the label column uses the model's label indices")
    cul, detection = text_cul(name, clean.defense_y.cpu(), labels)
    with stages("expose", f"Clean Unlearning, {detection.restarts} restart(s) (text profile {name})"):
        logs = rd.expose_runs(model, clean, cul, detection.restarts)
    with stages("read", "label detection (reference-free; text has no references here)"):
        decide = rd.read("reference-free", logs, detection.threshold, None, "uniform 1/K")
    with stages("write", f"report to {out}"):
        verdict = "inconclusive" if not rd.exposed(logs) else ("suspected" if decide.flagged else "clean")
        why = "text: the scanner has no clean text references (docs/scan.md, 'Text')"
        report = assemble(
            verdict=verdict,
            decide=decide,
            readings={"reference-free": decide},
            p=None,
            calibration={"method": None, "note": "not calibrated for text (the measurement is on images)"},
            logs=logs,
            ref_logs=None,
            ref_record={"used": False, "why_not": why},
            trigger=None,
            clean=clean,
            model_info=_info(folder, labels, acc, model),
            profile=SimpleNamespace(name=f"text:{name}", cul=cul),
            device=device,
        )
        report["seconds"] = {**stages.seconds, "total": stages.total_seconds()}
        write_outputs(out, report, logs, None, None, clean)
    log(f"[scan] verdict: {report['verdict']} -- {report['summary']}")
    return report


def _info(folder, labels: int, acc: float, model) -> dict:
    weights = sorted(Path(folder).expanduser().glob("*.safetensors"))
    return {
        "file": str(folder),
        "sha256": file_digest(weights[0]),
        "arch": "hf-text",
        "num_classes": labels,
        "parameters": sum(p.numel() for p in model.parameters()),
        "clean_accuracy": round(acc, 4),
        "trigger_recovery": "not done for text (Neural Cleanse inverts pixels)",
    }
