"""Writing a Schedule to files researchers use: NumPy ``.npz`` and ``.csv`` (docs/exports.md).

CSV is streamed block by block, so a 24 h session writes in flat memory. The npz holds the whole pulse
array plus the shape table (needed to turn rows back into waveforms).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .schedule import Schedule

CSV_COLUMNS = ("t_us", "channel", "amplitude_ua", "shape")


def shape_table(schedule: Schedule) -> dict[str, np.ndarray]:
    """The shape table as flat arrays: phases of shape i are rows offsets[i]:offsets[i+1]."""
    offsets = [0]
    durations: list[int] = []
    amplitudes: list[float] = []
    for shape in schedule.shapes:
        for d, a in shape.phases:
            durations.append(d)
            amplitudes.append(a)
        offsets.append(len(durations))
    return {
        "shape_offsets": np.asarray(offsets, dtype=np.int64),
        "phase_duration_us": np.asarray(durations, dtype=np.int64),
        "phase_amplitude": np.asarray(amplitudes, dtype=np.float64),
        "shape_kind": np.asarray([s.kind for s in schedule.shapes], dtype=np.str_),
    }


def metadata(schedule: Schedule) -> dict:
    return {
        "title": schedule.title,
        "source": schedule.source_name,
        "sha256": schedule.sha256,
        "session": schedule.session,
        "week": schedule.week,
        "duration_us": schedule.duration_us,
        "params": {k: str(v) for k, v in schedule.params.items()},
        "channels": [
            {"number": c.number, "name": c.name, "site": c.site, "side": c.side,
             "frequency_hz": str(c.frequency_hz), "amplitude_ua": int(c.amplitude_ua)}
            for c in schedule.channels
        ],
        "shapes": [{"kind": s.kind, "phases": [list(p) for p in s.phases]} for s in schedule.shapes],
        "columns": list(CSV_COLUMNS),
    }


def write_npz(schedule: Schedule, path: str | Path) -> int:
    """Save pulses + shape table + metadata (JSON string) to ``path``; returns the pulse count."""
    pulses = schedule.pulses
    np.savez_compressed(path, pulses=pulses, metadata=np.asarray(json.dumps(metadata(schedule))),
                        **shape_table(schedule))
    return int(len(pulses))


def write_csv(schedule: Schedule, path: str | Path, max_pulses: int = 262144) -> int:
    """Stream the pulses to CSV with a header row ``t_us,channel,amplitude_ua,shape``."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(CSV_COLUMNS) + "\n")
        for block in schedule.blocks(max_pulses=max_pulses):
            if len(block) == 0:
                continue
            cols = np.column_stack([block["t_us"].astype(np.int64), block["channel"].astype(np.int64),
                                    block["amplitude_ua"].astype(np.int64), block["shape"].astype(np.int64)])
            np.savetxt(fh, cols, fmt="%d", delimiter=",")
            n += len(block)
    return n


def write(schedule: Schedule, path: str | Path) -> int:
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return write_npz(schedule, path)
    if suffix == ".csv":
        return write_csv(schedule, path)
    raise ValueError(f"unknown output format {suffix or '(none)'!r}: use .npz or .csv")
