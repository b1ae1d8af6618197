"""The scan's outputs: report.json (a stable schema, REPORT_KEYS; every key tested), report.png (one page: the CUL
curves, the class shares against the contrast, the excess per class, the recovered trigger beside clean images
stamped with it) and report.html (the page and the key numbers, self-contained).

Written last and atomically: each file goes to a temporary name inside the output folder and is renamed into
place, report.json after the others, so a report.json is always a finished scan's."""

from __future__ import annotations

import base64
import html
import json
import os
import platform
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from .. import __version__
from ..core.store import hardware_name
from . import readings as rd

SCHEMA_VERSION = 1
REPORT_KEYS = (
    "schema_version",
    "verdict",
    "exit_code",
    "summary",
    "suspected_label",
    "suspected_class",
    "p_backdoored",
    "calibration",
    "decided_by",
    "readings",
    "exposure",
    "references",
    "trigger",
    "not_seen",
    "model",
    "data",
    "profile",
    "seconds",
    "versions",
    "hardware",
)


def assemble(*, verdict, decide, readings, p, calibration, logs, ref_logs, ref_record, trigger, clean, model_info,
             profile, device) -> dict:  # fmt: skip
    """report.json's content (seconds are added by the caller)."""
    from .core import EXIT_CODES

    suspected = verdict == "suspected"
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict,
        "exit_code": EXIT_CODES[verdict],
        "summary": summary(verdict, decide, p, trigger, clean.classes),
        "suspected_label": decide.label if suspected else None,
        "suspected_class": clean.classes[decide.label] if suspected else None,
        "p_backdoored": None if p is None else round(p, 4),
        "calibration": calibration,
        "decided_by": decide.name,
        "readings": {k: {**asdict(r), "excess": [round(e, 4) for e in r.excess]} for k, r in readings.items()},
        "exposure": {
            "method": "Clean Unlearning (Li et al. 2024), gradient ascent on the defense half",
            "cul": asdict(profile.cul),
            "restarts": len(logs),
            "stop_epochs": [log.attrs.get("stop_epoch") for log in logs],
            "collapsed": rd.exposed(logs),
        },
        "references": ref_record,
        "trigger": None if trigger is None else {k: v for k, v in trigger.items() if k not in ("mask", "pattern")},
        "not_seen": None if suspected else rd.blind_spots(),
        "model": model_info,
        "data": {
            "source": clean.source,
            "classes": list(clean.classes),
            "n_defense": len(clean.defense_y),
            "n_probe": len(clean.probe_x),
        },
        "profile": profile.name,
        "seconds": {},
        "versions": versions(),
        "hardware": hardware_name(device),
    }


def versions() -> dict:
    import torchvision

    return {
        "ebyd_utils": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


def summary(verdict: str, decide, p, trigger, classes) -> str:
    """One sentence a reader acts on, from the numbers of the report."""
    prob = "" if p is None else f"; P(backdoored) = {p:.2f} (see calibration)"
    name = classes[decide.label] if decide.label < len(classes) else decide.label
    if verdict == "inconclusive":
        return "CUL never reached its stop rule in every restart: nothing was read (not a clean verdict)"
    if verdict == "clean":
        return (
            f"no label flagged: the largest excess share is {decide.score:.3f} (label {decide.label}, {name}) "
            f"against the threshold {decide.threshold} ({decide.name}){prob}; not_seen lists what it cannot rule out"
        )
    text = (
        f"label {decide.label} ({name}) flagged: excess share {decide.score:.3f} >= {decide.threshold} "
        f"({decide.name}){prob}"
    )
    if trigger is not None:
        text += (
            f"; Neural Cleanse recovered a stamp of L1 {trigger['mask_l1']:.1f} px that sends "
            f"{trigger['success']:.0%} of the clean probe images to label {decide.label}"
        )
    return text


def _atomic(folder: Path, name: str, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, folder / name)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_outputs(out, report: dict, logs, ref_logs, trigger, clean) -> Path:
    """report.png, report.html, then report.json into `out` (created if needed)."""
    from .figure import report_figure

    folder = Path(out).expanduser()
    fig = report_figure(report, logs, ref_logs, trigger, clean)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic(folder, "report.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    png = (folder / "report.png").read_bytes()
    _atomic(folder, "report.html", lambda tmp: Path(tmp).write_text(page(report, png)))
    _atomic(folder, "report.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2, default=str)))
    return folder


def page(report: dict, png: bytes) -> str:
    """A one-page, self-contained HTML report: the verdict, the key numbers, the figure, what it cannot see."""
    rows = [
        ("verdict", report["verdict"]),
        ("decided by", report["decided_by"]),
        ("suspected label", report["suspected_label"]),
        ("P(backdoored)", report["p_backdoored"]),
        ("calibration", report["calibration"].get("note", "")),
        ("model", f"{report['model']['file']} ({report['model']['arch']}, sha256 {report['model']['sha256'][:12]})"),
        ("clean accuracy", report["model"]["clean_accuracy"]),
        ("data", f"{report['data']['source']}: {report['data']['n_defense']} + {report['data']['n_probe']} images"),
        ("profile", report["profile"]),
        ("seconds", report["seconds"].get("total")),
        ("hardware", report["hardware"]),
    ]
    for name, r in report["readings"].items():
        rows.append((f"reading: {name}", f"label {r['label']}, score {r['score']:.3f}, threshold {r['threshold']}"))
    table = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    missed = (report.get("not_seen") or {}).get("missed") or []
    not_seen = "".join(f"<li>{html.escape(m['attack'])}: score {m['score']}</li>" for m in missed)
    blind = (
        f"<h2>What a clean verdict cannot rule out</h2><p>Backdoored models exposure did not flag with their target "
        f"in {html.escape(report['not_seen']['source'])} (score vs threshold):</p><ul>{not_seen}</ul>"
        if missed
        else ""
    )
    limit = ((report.get("not_seen") or {}).get("low_rate") or {}).get("lines") or []
    if limit:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in limit)
        blind += (
            "<h2>Low poison rates</h2><p>Where exposure stops seeing a backdoor "
            f"({html.escape(report['not_seen']['low_rate']['source'])}):</p><ul>{items}</ul>"
        )
    image = base64.b64encode(png).decode()
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>EBYD scan</title><style>body{font-family:sans-serif;"
        "max-width:1100px;margin:auto}th{text-align:left;padding-right:1em}</style></head><body>"
        f"<h1>EBYD scan: {html.escape(report['verdict'])}</h1><p>{html.escape(report['summary'])}</p>"
        f"<table>{table}</table><img style='width:100%' src='data:image/png;base64,{image}'>{blind}"
        "<p>Method: Expose Before You Defend (Li et al. 2024); docs/scan.md states what the scanner compares with "
        "and its measured false-flag rate on models trained elsewhere.</p></body></html>"
    )
