"""The delivered pulses of a recorded session as ``.npz`` or ``.csv`` (docs/research.md).

Same layout as ``stimscript compile`` (docs/exports.md) with two more columns: ``sched_t_us`` (where the
pulse sits in the schedule; it differs from ``t_us`` after a pause) and ``period`` (0 before the first
pause, then one more after each resume). ``amplitude_ua`` is what the device delivered, after live
intensity changes and pause/stop ramps.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.export import shape_table
from .delivery import Delivery

CSV_COLUMNS = ("t_us", "channel", "amplitude_ua", "shape", "sched_t_us", "period")


def metadata(d: Delivery) -> dict:
    rec, sched = d.record, d.schedule
    return {
        "record_id": rec.id, "uuid": rec.uuid, "title": rec.title, "source": rec.source, "sha256": rec.sha256,
        "session": rec.session, "week": rec.week, "params": {k: str(v) for k, v in (rec.params or {}).items()},
        "device": rec.device, "device_serial": rec.device_serial, "started_at": rec.started_at,
        "end_reason": rec.end_reason, "epoch_device_us": d.epoch_us,
        "time_reference": "t_us: µs after the session start (the START epoch) on the device clock",
        "delivered": {str(k): int(v) for k, v in rec.delivered.items()},
        "verified": "per-channel counts, peaks and the SHA-256 of the device's acknowledgements",
        "pauses_us": [list(p) for p in d.pauses],
        "ending": list(d.ending) if d.ending else None,
        "sync_out": ({k: v for k, v in d.timeline.extra["sync_out"].items() if k != "sha256"}
                     if d.sync_edges is not None else None),
        "channels": [{"number": c.number, "name": c.name, "site": c.site, "side": c.side,
                      "electrodes": list(c.electrodes), "frequency_hz": str(c.frequency_hz)}
                     for c in sched.channels],
        "shapes": [{"kind": s.kind, "phases": [list(p) for p in s.phases]} for s in sched.shapes],
        "columns": list(CSV_COLUMNS),
    }


def write_npz(d: Delivery, path) -> int:
    arrays: dict[str, Any] = {"pulses": d.pulses, "contractions": d.contractions,
                              "metadata": np.asarray(json.dumps(metadata(d))), **shape_table(d.schedule)}
    if d.sync_edges is not None:
        arrays["sync_edges"] = d.sync_edges
    np.savez_compressed(path, **arrays)
    return len(d.pulses)


def write_csv(d: Delivery, path, chunk: int = 262144) -> int:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(CSV_COLUMNS) + "\n")
        for i in range(0, len(d.pulses), chunk):
            block = d.pulses[i:i + chunk]
            cols = np.column_stack([block[c].astype(np.int64) for c in CSV_COLUMNS])
            np.savetxt(fh, cols, fmt="%d", delimiter=",")
    return len(d.pulses)


def write(d: Delivery, path) -> int:
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return write_npz(d, path)
    if suffix == ".csv":
        return write_csv(d, path)
    raise ValueError(f"unknown output format {suffix or '(none)'!r}: use .npz or .csv")
