"""A delivered session as a Neurodata Without Borders file (pynwb, the optional extra ``stimscript[nwb]``).

Layout (times in seconds from the session start, the START epoch on the stimulator's clock):

* events table ``delivered_pulses`` (NWB core EventsTable): timestamp, duration (the pulse shape), channel,
  amplitude (A, first phase, as delivered), shape (index into ``pulse_shapes``), shape_kind,
  schedule_time (where the pulse sits in the protocol's schedule);
* time intervals ``contractions``: start/stop of each contraction, channel, pulses, peak amplitude (A);
  ``stimulation_pauses``: operator pauses;
* table ``pulse_shapes``: the phases of every shape (duration s, amplitude relative to the first phase);
* table ``stimulation_channels``: output number, name, muscle/site, side, electrodes and their areas;
* the device (``stimscript`` model, serial, whether it was an emulator), ``protocol`` = title and source,
  ``stimulus_notes`` = the protocol text exactly as run, ``notes`` = params, session and the check made.
"""
from __future__ import annotations

import datetime as _dt
import json

import numpy as np

from .delivery import Delivery, ExportError

EMULATED = ("loopback",)


def require_pynwb():
    try:
        import pynwb  # noqa: F401
    except ImportError as exc:
        raise ExportError("--nwb needs the optional extra: pip install 'stimscript[nwb]' (pynwb)") from exc
    return pynwb


def _start_time(text: str) -> _dt.datetime:
    try:
        t = _dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        t = _dt.datetime.now(_dt.timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def build(d: Delivery):
    """The NWBFile object (not written)."""
    pynwb = require_pynwb()
    from hdmf.common import DynamicTable, VectorData
    from pynwb.event import DurationVectorData, EventsTable, TimestampVectorData

    rec, sched = d.record, d.schedule
    nwb = pynwb.NWBFile(
        session_description=f"NMES session {rec.session} of {rec.title or 'a stimscript protocol'}",
        identifier=rec.uuid, session_start_time=_start_time(rec.started_at),
        session_id=str(rec.id), protocol=f"{rec.title} ({rec.source}, SHA-256 {rec.sha256})",
        stimulus_notes=d.protocol_text,
        notes=json.dumps({"session": rec.session, "week": rec.week,
                          "params": {k: str(v) for k, v in (rec.params or {}).items()},
                          "end_reason": rec.end_reason, "epoch_device_us": d.epoch_us,
                          "verified": "pulses rebuilt from the record; counts, peaks and SHA-256 equal the "
                                      "device's acknowledgements"}),
        source_script="stimscript", source_script_file_name=rec.source or "")
    emulated = rec.device in EMULATED or "emul" in rec.device.lower()
    nwb.create_device(name="stimulator", description=(f"{rec.device} stimulator driven by stimscript"
                                                      + (" (an emulator: no current flowed)" if emulated else "")),
                      serial_number=rec.device_serial or None)

    shape_us = np.array([s.duration_us for s in sched.shapes] or [0], dtype=np.int64)
    p = d.pulses
    kinds = [s.kind for s in sched.shapes]
    shape_idx = p["shape"].astype(np.int64)
    events = EventsTable(
        name="delivered_pulses",
        description="every pulse the stimulator delivered (rebuilt and checked against its acknowledgements); "
                    "timestamp = pulse onset on the stimulator's clock",
        source_description="stimscript export of the session record",
        id=np.arange(len(p)),
        columns=[
            TimestampVectorData(name="timestamp", description="pulse onset, s from the session start",
                                data=p["t_us"] / 1e6, resolution=1e-6),
            DurationVectorData(name="duration", description="the whole pulse shape (gaps included), s",
                               data=shape_us[shape_idx] / 1e6, resolution=1e-6),
            VectorData(name="channel", description="stimulator output (1-based)", data=p["channel"].astype(np.int32)),
            VectorData(name="amplitude", description="first-phase current as delivered, in A",
                       data=p["amplitude_ua"] / 1e6),
            VectorData(name="shape", description="index into the pulse_shapes table", data=shape_idx.astype(np.int32)),
            VectorData(name="shape_kind", description="monophasic, biphasic, asymmetric, burst, doublet or custom",
                       data=[kinds[i] for i in shape_idx]),
            VectorData(name="schedule_time", description="onset in the protocol's schedule, s (differs after a "
                                                         "pause)", data=p["sched_t_us"] / 1e6),
        ])
    nwb.add_events_table(events)

    con = pynwb.epoch.TimeIntervals(name="contractions",
                                    description="contractions: runs of delivered pulses of one cycle on one "
                                                "output (a pause cuts one in two)")
    con.add_column("channel", "stimulator output (1-based)")
    con.add_column("n_pulses", "pulses delivered in the contraction")
    con.add_column("peak_amplitude", "largest first-phase current delivered, in A")
    for c in d.contractions:
        con.add_row(start_time=c["onset_us"] / 1e6, stop_time=c["end_us"] / 1e6, channel=int(c["channel"]),
                    n_pulses=int(c["n_pulses"]), peak_amplitude=int(c["peak_ua"]) / 1e6)
    nwb.add_time_intervals(con)
    if d.pauses:
        pauses = pynwb.epoch.TimeIntervals(name="stimulation_pauses", description="output paused by the operator")
        for a, b in d.pauses:
            pauses.add_row(start_time=a / 1e6, stop_time=b / 1e6)
        nwb.add_time_intervals(pauses)

    shapes = DynamicTable(name="pulse_shapes", description="pulse shapes: phases as (duration s, amplitude "
                          "relative to the first phase); a gap is a phase of amplitude 0", columns=[
                              VectorData(name="kind", description="construct", data=[s.kind for s in sched.shapes]),
                              VectorData(name="phases", description="JSON list of [duration_s, relative_amplitude]",
                                         data=[json.dumps([[du / 1e6, a] for du, a in s.phases])
                                               for s in sched.shapes])])
    areas = {}
    try:
        from ..compiler import loads

        proto = loads(d.protocol_text, name=rec.source or "protocol.stim")
        desc = proto.describe(rec.session, {k: str(v) for k, v in (rec.params or {}).items()})
        areas = {e.name: float(e.area_cm2) for e in desc.electrodes if e.area_cm2}  # used electrodes
    except Exception:   # metadata only: never fail an export for it
        areas = {}
    chans = DynamicTable(name="stimulation_channels", description="stimulator outputs used by the protocol",
                         columns=[
                             VectorData(name="output", description="1-based output number",
                                        data=[c.number for c in sched.channels]),
                             VectorData(name="channel_name", description="channel name", data=[c.name for c in sched.channels]),
                             VectorData(name="site", description="muscle or nerve (motor-point atlas) or custom site",
                                        data=[c.site for c in sched.channels]),
                             VectorData(name="side", description="left/right", data=[c.side for c in sched.channels]),
                             VectorData(name="electrodes", description="cathode-anode of the leading phase",
                                        data=["-".join(c.electrodes) for c in sched.channels]),
                             VectorData(name="electrode_areas_cm2", description="areas of the two electrodes (cm²)",
                                        data=[json.dumps([areas.get(e) for e in c.electrodes])
                                              for c in sched.channels]),
                         ])
    mod = nwb.create_processing_module(name="stimulation", description="stimscript protocol tables")
    mod.add(shapes)
    mod.add(chans)
    return nwb


def write_nwb(d: Delivery, path) -> None:
    pynwb = require_pynwb()
    nwb = build(d)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
