"""The device log: what the device itself reported during a session, kept so the delivered output can be rebuilt.

A device reports every state change in a status report (with its own device time, the ramp end and every
channel's scale register) and every fault in a fault report (drivers/events.py). The host adds the one thing only it knows: how
schedule time maps to device time (the START epoch, and a new offset after each resume). With these facts
and the schedule, the delivered pulse list can be recomputed exactly by the device model of
docs/wire-protocol.md (``stimscript.research.rebuild``); the SHA-256 of the acknowledged pulses, computed
here as they arrive, proves the recomputation right.

Stored in the session record as JSON (``SessionRecord.device_log``)::

    {"version": 1, "epoch_us": E,
     "events": [["status", t_us, state, ramp_end_us, [scale_ppm per channel], delivered_total],  # on change
                ["fault", t_us, kind, channel, output_off],
                ["offset", from_sched_us, offset_us]],                           # dev_t = sched_t + offset
     "acked": n, "acked_through_us": T, "acked_sha256": hex,
     "extra": {"sync_out": {...}, "lsl": {...}}}                     # only when those were used

``extra`` holds what optional observers add (``DeviceLog.extra``): the sync-out edges the device raised
(stimscript/research/syncout.py) and the Lab Streaming Layer clock mapping (stimscript/research/lsl.py).

``acked_through_us`` is the device time of the last ACK report: every pulse the device delivered up to it
was acknowledged. ``acked_sha256`` hashes the acknowledged pulses in arrival order, each packed as
``ACKED_DTYPE`` (t_us relative to the epoch, channel, amplitude_ua).
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..drivers import events as ev
from ..drivers.events import pulse_digest

DEVICE_LOG_VERSION = 1
#: the packing hashed for ``acked_sha256`` (little-endian, no padding); the loopback emulator's
#: ``delivered_sha256`` uses the same one, so a record can be checked against what the device delivered
ACKED_DTYPE = ev.DIGEST_DTYPE

__all__ = ["ACKED_DTYPE", "DEVICE_LOG_VERSION", "DeviceLog", "SessionObserver", "pulse_digest"]


class SessionObserver:
    """Base of session observers (``stimscript.run(..., observers=[...])``): every hook is called on the
    dispatcher's thread, so it must return quickly and never block on I/O. ``on_sent`` gets the pulses in
    schedule time with the index the device gave the first one and the offset to device time."""

    def on_start(self, dispatcher) -> None:
        """The session started (START sent; ``dispatcher.epoch`` is the device time of session time 0)."""

    def on_sent(self, dispatcher, first_index: int, sched_pulses: np.ndarray, offset: int) -> None:
        """Pulses were queued on the device at device time ``sched_pulses["t_us"] + offset``."""

    def on_message(self, dispatcher, m) -> None:
        """A device report (AckMsg, StatusMsg, FaultMsg) arrived."""

    def on_end(self, dispatcher, record) -> None:
        """The session ended; ``record`` is final."""


class DeviceLog(SessionObserver):
    """A session observer that keeps the device log (attached by the dispatcher to every session)."""

    #: acknowledgements are hashed at least every HASH_BATCH pulses (bounded memory), and when the log is read
    HASH_BATCH = 16_384

    def __init__(self) -> None:
        self.epoch_us = 0
        self.events: list[list] = []
        self._last_status: tuple | None = None
        self._offset: int | None = None
        self._digest = hashlib.sha256()
        self._unhashed: list[np.ndarray] = []
        self._hashed = 0
        self.acked = 0
        self.acked_through_us: int | None = None
        #: facts other observers keep with the record (JSON-serialisable), by name
        self.extra: dict[str, dict] = {}

    # ---- observer hooks --------------------------------------------------------------------------------
    def on_start(self, dispatcher) -> None:
        self.epoch_us = int(dispatcher.epoch)
        self._offset = int(dispatcher.offset)
        self.events.append(["offset", 0, self._offset])

    def on_message(self, dispatcher, m) -> None:
        if isinstance(m, ev.PulsesDelivered):
            r = m.records
            if len(r):
                self._unhashed.append(r)   # hashed in batches (_hash), in arrival order
                self.acked += len(r)
                if self.acked - self._hashed >= self.HASH_BATCH:
                    self._hash()
            self.acked_through_us = int(m.device_t_us)
        elif isinstance(m, ev.StatusReport):
            key = (str(m.state), int(m.ramp_end_us), tuple(int(s) for s in m.scale_ppm))
            if key != self._last_status:
                if m.state == ev.RUNNING and self._last_status is not None and self._last_status[0] == ev.PAUSED:
                    # the device confirms a resume: the dispatcher has already moved its time map (schedule
                    # time from the pause point on runs at the new offset)
                    self.events.append(["offset", int(dispatcher.pause_sched), int(dispatcher.offset)])
                self._last_status = key
                # the device's own count settles pulses that met a message at the very same instant
                self.events.append(["status", int(m.device_t_us), key[0], key[1], list(key[2]),
                                    int(m.delivered_total)])
        elif isinstance(m, ev.FaultReport):
            self.events.append(["fault", int(m.device_t_us), str(m.kind), int(m.channel), bool(m.output_off)])

    def _hash(self) -> None:
        """Feed the acknowledgements received since the last call into the digest (one pass per batch)."""
        if not self._unhashed:
            return
        r = ev.stack_records(self._unhashed)
        self._unhashed = []
        self._hashed = self.acked
        pulse_digest(r["t_us"].astype(np.int64) - self.epoch_us, r["channel"], r["amplitude_ua"], self._digest)

    # ---- the record --------------------------------------------------------------------------------------
    def as_dict(self) -> dict:
        self._hash()
        out = {"version": DEVICE_LOG_VERSION, "epoch_us": self.epoch_us, "events": [list(e) for e in self.events],
               "acked": self.acked, "acked_through_us": self.acked_through_us,
               "acked_sha256": self._digest.hexdigest()}
        if self.extra:
            out["extra"] = {k: dict(v) for k, v in self.extra.items()}
        return out
