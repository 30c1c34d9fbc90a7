"""What a driver reports to the runtime: neutral event and status types, independent of any wire format.

Every driver's :meth:`~stimscript.drivers.base.Driver.poll` returns a list of these, in the order the
device reported them. The runtime understands nothing else, so a driver for any protocol (the stimscript
wire protocol, ScienceMode, Pulse Pal, ...) translates its device's messages into them.

This module is a leaf: it imports nothing from stimscript, so protocol modules and the runtime can both
build on it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

#: One delivered pulse as a device confirms it: the index ``send_block`` gave the pulse, the device time it
#: was delivered at (µs), its output channel (1-based) and the amplitude actually delivered (µA, after the
#: scale register and any ramp envelope).
DELIVERY_DTYPE = np.dtype([("index", "<u4"), ("t_us", "<i8"), ("channel", "u1"), ("amplitude_ua", "<i4")])

#: The packing of a delivered pulse for its SHA-256 (little-endian, no padding): session time (µs after the
#: START epoch), channel, amplitude as delivered. The session record's device log hashes the acknowledged
#: pulses this way and the loopback emulator the pulses it delivered, so the two digests can be compared.
DIGEST_DTYPE = np.dtype([("t_us", "<i8"), ("channel", "u1"), ("amplitude_ua", "<i4")])


def stack_records(parts: list[np.ndarray]) -> np.ndarray:
    """One array of the record arrays ``parts`` (all of one structured dtype), in order, for reading (it may
    be read-only). Joined as bytes: numpy's concatenate of structured arrays compares their fields array by
    array, and a view of a structured array checks its fields in Python, both of which cost more than the
    copy."""
    if len(parts) == 1:
        return parts[0]
    return np.frombuffer(b"".join([p.tobytes() for p in parts]), dtype=parts[0].dtype)


def copy_records(rec: np.ndarray) -> np.ndarray:
    """A writable copy of the record array ``rec`` (one dimension), made from its bytes: numpy copies a packed
    structured array (these dtypes have no padding) field by field, several times slower."""
    if rec.ndim == 1:
        return np.frombuffer(bytearray(rec.tobytes()), dtype=rec.dtype)
    return rec.copy()


def pulse_digest(t_us: np.ndarray, channel: np.ndarray, amplitude_ua: np.ndarray, h=None):
    """Feed pulses (``t_us`` relative to the epoch) packed as DIGEST_DTYPE into a SHA-256 (a new one unless
    ``h``) and return it."""
    h = h if h is not None else hashlib.sha256()
    rec = np.empty(len(t_us), dtype=DIGEST_DTYPE)
    rec["t_us"] = t_us
    rec["channel"] = channel
    rec["amplitude_ua"] = amplitude_ua
    h.update(rec.tobytes())
    return h

# ---- device states (StatusReport.state, DeviceStatus.state) ---------------------------------------------
IDLE = "idle"            # no session
RUNNING = "running"      # delivering queued pulses
PAUSING = "pausing"      # ramping down towards "paused"
PAUSED = "paused"        # output off, session kept; resume() continues
STOPPING = "stopping"    # ramping down towards "stopped"
STOPPED = "stopped"      # the session ended by stop(); output off, queue flushed
ESTOPPED = "estopped"    # the session ended by estop(); output off, queue flushed
FAULTED = "faulted"      # the device ended the session itself (a fault, its watchdog); output off

STATES = (IDLE, RUNNING, PAUSING, PAUSED, STOPPING, STOPPED, ESTOPPED, FAULTED)
#: states in which the device delivers nothing more this session
FINAL_STATES = frozenset({IDLE, STOPPED, ESTOPPED, FAULTED})

# ---- fault kinds (FaultReport.kind) ----------------------------------------------------------------------
FAULT_KINDS = ("electrode", "over_limit", "watchdog", "queue_overflow", "bad_pulse", "bad_shape", "link", "device")


@dataclass(frozen=True)
class PulsesDelivered:
    """Pulses the device confirms it delivered (per-pulse acknowledgements).

    ``records`` is a DELIVERY_DTYPE array in delivery order, never changed afterwards (the runtime keeps it). ``late_total`` is the device's running count of
    pulses it received after their time and therefore dropped (underruns) this session, ``None`` when the
    device does not count them; ``queue_level`` the pulses it still holds (``None``: unknown)."""

    device_t_us: int
    records: np.ndarray
    late_total: int | None = None
    queue_level: int | None = None


def delivered_event(device_t_us: int, records: np.ndarray, late_total: int | None = None,
                    queue_level: int | None = None) -> PulsesDelivered:
    """``PulsesDelivered(device_t_us, records, late_total, queue_level)``, made without the frozen dataclass's
    per-field ``object.__setattr__`` (a driver makes one per device report; the object is the same)."""
    e = _new(PulsesDelivered)
    d = e.__dict__
    d["device_t_us"] = device_t_us
    d["records"] = records
    d["late_total"] = late_total
    d["queue_level"] = queue_level
    return e


_new = object.__new__


@dataclass(frozen=True)
class StatusReport:
    """The device's own account of the session, sent on request (``request_status``), on every state
    change, and as its final report when a session ends.

    ``delivered_total`` counts every pulse the device delivered this session; the runtime trusts it over
    its own count of acknowledgements when the two differ at the end. ``delivered``/``peak_ua`` are the
    per-channel counts and largest amplitudes (µA) when the device keeps them (empty otherwise).
    ``ramp_end_us`` is the device time at which a stop or pause ramp ends (states pausing/stopping) or
    ended (paused/stopped). ``scale_ppm`` holds the intensity scale each channel applies now, in parts per
    million (channel 1 first), as the device reports it; empty when it does not (the runtime then takes
    what it sent as applied). ``silent_total`` counts pulses not delivered because their amplitude was zero
    at pulse time (a scale of 0, the first instant of a resume ramp): intended, not missing."""

    device_t_us: int
    state: str
    delivered_total: int = 0
    late_total: int = 0
    flushed_total: int = 0
    queue_level: int = 0
    queue_capacity: int = 0
    ramp_end_us: int = 0
    delivered: dict = field(default_factory=dict)
    peak_ua: dict = field(default_factory=dict)
    scale_ppm: tuple = ()
    silent_total: int = 0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class FaultReport:
    """A fault the device detected. ``channel`` 0 means the whole device. ``output_off`` is True when the
    device has already switched every output off (otherwise only ``channel`` stopped); the runtime ends the
    session as "fault" and sends ``estop()`` either way."""

    kind: str
    channel: int
    device_t_us: int
    detail: str = ""
    output_off: bool = True

    def describe(self) -> str:
        where = f"channel {self.channel}" if self.channel else "device"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} fault on {where} at device time {self.device_t_us} µs{extra}"


@dataclass(frozen=True)
class SyncEdges:
    """TTL edges a device raised on its sync output ``line`` (device times, µs), with its running totals
    for the session: edges raised, and edges asked for but not raised (late, too close, output off)."""

    line: int
    t_us: np.ndarray
    raised_total: int = 0
    missed_total: int = 0


@dataclass(frozen=True)
class DeviceLost:
    """The driver concluded that the device is gone (cable, power, no answer). The runtime ends the
    session as "disconnected". Raising :class:`~stimscript.drivers.base.DeviceDisconnected` from any
    driver method means the same."""

    reason: str


@dataclass
class DeviceStatus:
    """The host's current view of the device (the latest report plus what it sent since)."""

    device_time_us: int = 0
    state: str = IDLE
    queue_level: int = 0
    queue_capacity: int = 0
    queue_free: int = 0
    sent_pulses: int = 0
    acked_pulses: int = 0
    late_pulses: int = 0
    faults: list = field(default_factory=list)
    link: dict = field(default_factory=dict)


Event = PulsesDelivered | StatusReport | FaultReport | SyncEdges | DeviceLost
