"""BIDS events (``*_events.tsv`` + ``*_events.json``) of a delivered session.

One row per contraction (and, on request, per pulse), plus the pauses and the end of output, with the
stimulation described in ``electrical_stimulation_<label>`` columns as BIDS recommends for electrical
stimulation (the iEEG specification's convention: type, site, current in A, ...). The JSON sidecar
describes every column. Onsets are seconds from a declared reference:

* ``session``  the session start (START epoch on the device clock) — the default;
* ``ttl``      the first sync-out TTL edge the device raised (``run --sync-out``): line this up with the
               trigger channel of an EMG/force recording;
* ``lsl``      the Lab Streaming Layer clock (``run --lsl``): onsets are LSL timestamps, directly comparable
               with every stream of the same LabRecorder file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .delivery import Delivery, ExportError

REFERENCES = ("session", "ttl", "lsl")

COLUMNS: dict[str, dict[str, Any]] = {
    "onset": {"LongName": "Event onset", "Units": "s"},
    "duration": {"LongName": "Event duration", "Units": "s"},
    "trial_type": {"LongName": "Event kind", "Levels": {
        "nmes_contraction": "one contraction on one output: its delivered pulses from the first pulse's onset to "
                            "the end of the last pulse (a pause cuts it in two rows)",
        "nmes_pulse": "one delivered pulse (duration: the whole pulse shape, gaps included)",
        "nmes_pause": "output paused by the operator (off from onset for duration, then resumed)",
        "nmes_stop": "output stopped by the operator (after a ramp-down)",
        "nmes_emergency_stop": "emergency stop: output off at once",
        "nmes_fault": "the device ended the output itself (fault or watchdog)",
        "nmes_sync_edge": "the stimulator raised its TTL sync output (run --sync-out) for duration"}},
    "stim_channel": {"LongName": "Stimulation channel", "Description": "the channel's name in the protocol"},
    "electrical_stimulation_output": {"LongName": "Stimulator output number", "Description":
                                      "1-based output of the stimulator (channel NAME NUMBER in the protocol)"},
    "electrical_stimulation_type": {"LongName": "Pulse shape", "Description":
                                    "monophasic, biphasic, asymmetric, burst, doublet or custom"},
    "electrical_stimulation_site": {"LongName": "Electrodes", "Description":
                                    "electrode pair as CATHODE-ANODE of the leading phase (protocol names)"},
    "electrical_stimulation_muscle": {"LongName": "Stimulated muscle or nerve", "Description":
                                      "motor-point atlas name and side, or the protocol's custom site"},
    "electrical_stimulation_current": {"LongName": "Current", "Units": "A", "Description":
                                       "peak current of the first phase as delivered (contraction rows: the "
                                       "largest pulse of the contraction)"},
    "electrical_stimulation_frequency": {"LongName": "Pulse frequency", "Units": "Hz", "Description":
                                         "pulses per second of the row's train (the protocol's frequency)"},
    "electrical_stimulation_pulse_width": {"LongName": "First phase duration", "Units": "s", "Description":
                                           "duration of the leading phase of the pulse shape"},
    "electrical_stimulation_n_pulses": {"LongName": "Pulses delivered", "Description": "pulses in the row"},
    "block": {"LongName": "Session block", "Description": "label of the protocol block the row belongs to"},
}


def _reference(d: Delivery, reference: str) -> tuple[float, str]:
    """-> (seconds to subtract from session time, description)."""
    extra = d.record.device_log.get("extra", {}) if d.record.device_log else {}
    if reference == "session":
        return 0.0, "seconds after the session start (the START epoch on the stimulator's clock)"
    if reference == "ttl":
        edges = extra.get("sync_out", {}).get("first_edge_us")
        if edges is None:
            raise ExportError("--reference ttl: this session's record holds no sync-out TTL edge (run the session "
                              "with --sync-out start|contraction|pulse on a device with a sync output)")
        return edges / 1e6, (f"seconds after the first sync-out TTL edge (line {extra['sync_out'].get('line', 1)}, "
                             f"{edges / 1e6:.6f} s after the session start)")
    if reference == "lsl":
        lsl = extra.get("lsl")
        if not lsl or "session_start_lsl_s" not in lsl:
            raise ExportError("--reference lsl: this session's record holds no Lab Streaming Layer clock mapping "
                              "(run the session with --realtime --lsl)")
        # LSL time = session time + (epoch on the LSL clock)
        return -float(lsl["session_start_lsl_s"]), (
            f"Lab Streaming Layer clock (local_clock seconds), mapped from the stimulator's clock with an "
            f"uncertainty of ±{lsl['uncertainty_s'] * 1e3:.3f} ms at the session start "
            f"(+{lsl['drift_bound_ppm']} ppm of elapsed time)")
    raise ExportError(f"unknown reference {reference!r} (use one of {', '.join(REFERENCES)})")


def _fmt(x) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.6f}".rstrip("0").rstrip(".") if x != 0 else "0"
    return str(x)


def rows(d: Delivery, pulses: bool = False, reference: str = "session") -> tuple[list[dict], str]:
    shift, ref_text = _reference(d, reference)
    sched = d.schedule
    shapes = sched.shapes
    seg_starts = [s.start_us for s in sched.segments]
    import bisect

    def block_of(sched_t: int) -> str:
        i = bisect.bisect_right(seg_starts, sched_t) - 1
        return sched.segments[i].label if i >= 0 else "n/a"

    def chan(number: int) -> dict:
        info = d.channel_info(number)
        if info is None:
            return {"stim_channel": None, "electrical_stimulation_site": None, "electrical_stimulation_muscle": None}
        site = " ".join(x for x in (info.site, info.side) if x) or None
        pair = "-".join(e for e in info.electrodes if e) or None
        return {"stim_channel": info.name, "electrical_stimulation_site": pair, "electrical_stimulation_muscle": site}

    out = []
    trains = sched.trains
    for c in d.contractions:
        tr = trains[int(c["train"])]
        shape = shapes[tr.shape]
        first = d.pulses[int(c["first"])]
        out.append({"onset": c["onset_us"] / 1e6 - shift, "duration": (c["end_us"] - c["onset_us"]) / 1e6,
                    "trial_type": "nmes_contraction", **chan(int(c["channel"])),
                    "electrical_stimulation_output": int(c["channel"]),
                    "electrical_stimulation_type": shape.kind,
                    "electrical_stimulation_current": int(c["peak_ua"]) / 1e6,
                    "electrical_stimulation_frequency": float(tr.period_den * 1_000_000 / tr.period_num),
                    "electrical_stimulation_pulse_width": shape.first_phase_us / 1e6,
                    "electrical_stimulation_n_pulses": int(c["n_pulses"]),
                    "block": block_of(int(first["sched_t_us"]))})
    if pulses and len(d.pulses):
        index = None
        from .contractions import TrainIndex

        index = TrainIndex(sched)
        train, _ = index.locate(d.pulses["channel"].astype(np.int64), d.pulses["sched_t_us"].astype(np.int64))
        for p, ti in zip(d.pulses, train):
            tr = trains[int(ti)]
            shape = shapes[int(p["shape"])]
            out.append({"onset": int(p["t_us"]) / 1e6 - shift, "duration": shape.duration_us / 1e6,
                        "trial_type": "nmes_pulse", **chan(int(p["channel"])),
                        "electrical_stimulation_output": int(p["channel"]),
                        "electrical_stimulation_type": shape.kind,
                        "electrical_stimulation_current": abs(int(p["amplitude_ua"])) / 1e6,
                        "electrical_stimulation_frequency": float(tr.period_den * 1_000_000 / tr.period_num),
                        "electrical_stimulation_pulse_width": shape.first_phase_us / 1e6,
                        "electrical_stimulation_n_pulses": 1, "block": block_of(int(p["sched_t_us"]))})
    for a, b in d.pauses:
        out.append({"onset": a / 1e6 - shift, "duration": (b - a) / 1e6, "trial_type": "nmes_pause"})
    if d.sync_edges is not None:
        width = int(d.timeline.extra["sync_out"].get("width_us", 0)) / 1e6
        for t in d.sync_edges.tolist():
            out.append({"onset": t / 1e6 - shift, "duration": width, "trial_type": "nmes_sync_edge"})
    kind = {"stopped": "nmes_stop", "emergency_stop": "nmes_emergency_stop", "fault": "nmes_fault"}.get(
        d.record.end_reason)
    if kind and d.ending:
        out.append({"onset": d.ending[1] / 1e6 - shift, "duration": 0.0, "trial_type": kind})
    out.sort(key=lambda r: (r["onset"], r["trial_type"] != "nmes_contraction"))
    return out, ref_text


def write_events(d: Delivery, path, pulses: bool = False, reference: str = "session") -> tuple[Path, Path, int]:
    """Write ``path`` (TSV) and its JSON sidecar; returns (tsv, json, rows)."""
    path = Path(path)
    if not path.name.endswith("_events.tsv"):
        raise ExportError(f"{path.name}: a BIDS events file is named *_events.tsv (e.g. sub-01_task-nmes_events.tsv)")
    table, ref_text = rows(d, pulses=pulses, reference=reference)
    cols = list(COLUMNS)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(cols) + "\n")
        for r in table:
            fh.write("\t".join(_fmt(r.get(c)) for c in cols) + "\n")
    sidecar = {c: dict(v) for c, v in COLUMNS.items()}
    sidecar["onset"]["Description"] = f"Onset in {ref_text}"
    sidecar["duration"]["Description"] = "Duration of the event in seconds"
    rec = d.record
    sidecar["StimulusPresentation"] = {
        "SoftwareName": "stimscript", "Code": rec.source or "",
        "SoftwareRRID": "n/a"}
    sidecar["StimulationProtocol"] = {"Title": rec.title, "SHA256": rec.sha256, "Session": rec.session,
                                      "Params": {k: str(v) for k, v in (rec.params or {}).items()},
                                      "Device": rec.device, "DeviceSerialNumber": rec.device_serial,
                                      "Reference": reference}
    json_path = path.with_name(path.name[: -len(".tsv")] + ".json")
    json_path.write_text(json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path, json_path, len(table)
