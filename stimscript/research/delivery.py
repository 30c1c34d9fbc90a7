"""A recorded session as delivered: recompiled from the record, rebuilt from the device log and checked.

:func:`load_delivery` is what ``stimscript export ID`` and the BIDS/NWB writers start from::

    d = load_delivery(7)                 # record #7 of the default records database
    d.pulses                             # DELIVERED_DTYPE, t_us from the session start (device clock)
    d.contractions                       # CONTRACTION_DTYPE (contractions.py)
    d.pauses, d.blocks                   # [(start_us, end_us)], [(t_us, segment)]
    d.sync_edges                         # sync-out TTL edges (µs), or None without sync out
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import StimscriptError
from ..runtime.records import RecordStore, SessionRecord
from .contractions import TrainIndex, group
from .rebuild import RebuildError, Timeline, current_step, read_log, replay, verify

if TYPE_CHECKING:
    from ..compiler.schedule import Schedule


@dataclass
class Delivery:
    record: SessionRecord
    schedule: Schedule
    pulses: np.ndarray
    contractions: np.ndarray
    timeline: Timeline
    protocol_text: str = ""
    #: (start_us, end_us) of every pause, session time: from the start of its ramp-down (or the output going
    #: off, without a ramp) to the resume
    pauses: list = field(default_factory=list)
    #: (t_us, Segment) for every block (or protocol pause) that started while output was on
    blocks: list = field(default_factory=list)
    #: ("stopped" | "emergency_stop" | "fault" | ..., t_us) where the output ended, session time
    ending: tuple | None = None
    #: the sync-out TTL edges the device raised, µs after the session start (None: no sync out), verified
    sync_edges: np.ndarray | None = None

    @property
    def epoch_us(self) -> int:
        return self.timeline.epoch_us

    def channel_info(self, number: int):
        for info in self.schedule.channels:
            if info.number == number:
                return info
        return None


def protocol_text(record: SessionRecord) -> str:
    """The protocol text the session ran: kept in the record, else the file if it is unchanged."""
    if record.source_text:
        return record.source_text
    path = Path(record.source) if record.source else None
    if path is None or not path.is_file():
        raise RebuildError(f"record #{record.id} keeps no protocol text and its file {record.source or '(none)'!r} "
                           "is not there: the session cannot be recompiled")
    data = path.read_bytes()
    if record.sha256 and hashlib.sha256(data).hexdigest() != record.sha256:
        raise RebuildError(f"record #{record.id} keeps no protocol text and {path} has changed since the session "
                           "(SHA-256 differs): the session cannot be recompiled")
    return data.decode("utf-8-sig", errors="replace")


def from_record(record: SessionRecord, check: bool = True) -> Delivery:
    """Recompile the record's protocol (its text, params and plan session), rebuild and check the delivery."""
    from ..compiler import loads

    text = protocol_text(record)
    proto = loads(text, name=record.source or f"record-{record.id}.stim")
    schedule = proto.compile(session=record.session, params={k: str(v) for k, v in (record.params or {}).items()})
    tl = read_log(record.device_log)
    pulses = replay(schedule.pulses, tl, current_step(record.fidelity))
    if check:
        verify(pulses, tl, record.delivered, record.peak_ua)
    contractions = group(pulses, TrainIndex(schedule))
    from .syncout import rebuild_edges

    d = Delivery(record, schedule, pulses, contractions, tl, text,
                 sync_edges=rebuild_edges(schedule, tl) if check else None)
    _timeline_facts(d)
    return d


def load_delivery(record_id: int, db=None, check: bool = True) -> Delivery:
    with RecordStore(db) as store:
        record = store.get(int(record_id))
    return from_record(record, check=check)


def _timeline_facts(d: Delivery) -> None:
    tl, epoch = d.timeline, d.timeline.epoch_us
    for a, b in zip(tl.periods, tl.periods[1:]):
        if a.end_us is not None:
            start = a.ramp_down_from_us if a.ramp_down_from_us is not None else a.end_us
            d.pauses.append((start - epoch, b.at_us - epoch))
    last = tl.periods[-1]
    if last.end_us is not None:
        d.ending = (last.end_state, last.end_us - epoch)
    for seg in d.schedule.segments:
        for per in tl.periods:
            if per.from_sched_us <= seg.start_us and (per.to_sched_us is None or seg.start_us < per.to_sched_us):
                t = seg.start_us + per.offset_us
                if per.end_us is None or t <= per.end_us:
                    d.blocks.append((t - epoch, seg))
                break


class ExportError(StimscriptError):
    """An export that cannot be written as asked."""
