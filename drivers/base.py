"""The driver interface (python-can style): one base class, backends override a small set of methods.

:class:`Driver` is the contract the runtime talks to. :class:`WireDriver` implements the whole contract on
top of the stimscript wire protocol; a transport only has to provide ``_open_transport``,
``_close_transport``, ``_write(bytes)`` and ``_read() -> bytes`` (see ``loopback.py`` and ``usb.py``).
A device with another protocol (ScienceMode, Pulse Pal, ...) subclasses :class:`Driver` directly.

All pulse times a driver sees are **device time** (µs on the device clock); the runtime maps session
time to device time with the START epoch.
"""
from __future__ import annotations

import threading
from fractions import Fraction
from abc import ABC, abstractmethod

import numpy as np

from ..errors import DeviceTimeout, DriverError, ProtocolMismatch
from ..profile import DeviceProfile
from . import events as ev
from . import wire as w
from .events import DeviceStatus
from .timesync import DEFAULT_DRIFT_PPM, TimeSync


class DeviceDisconnected(DriverError):
    """The device went away mid-session (USB unplugged, cable, power, no answer)."""


class Driver(ABC):
    """Base class of every stimulator driver: the whole contract between the runtime and a device.

    The runtime (``stimscript.run``) calls only the methods below, from one thread, except ``estop()``,
    which a UI thread may call at any moment while holding ``self.lock`` (so make ``estop`` safe to run
    between any two other calls, and take ``self.lock`` around anything it must not interleave with).

    A session, as the runtime drives it::

        dev.open()                        # connect, identify; capabilities() is known afterwards
        dev.use_clock(clock)              # virtual time: emulated devices follow the runtime's clock
        dev.prepare(schedule)             # the whole session, before anything is sent (optional hook)
        dev.upload_shapes(schedule.shapes)
        dev.start(epoch_us)               # session t = 0 is device time epoch_us
        loop:  dev.poll() -> events       # at least every ``poll_interval_us`` (and 4x per watchdog period)
               dev.send_block(pulses)     # pulses (device time) up to a look-ahead, within queue_free()
               dev.set_scale(ch, factor)  # live intensity, per channel
               dev.keepalive()            # when nothing else was sent for a while
               dev.request_status()       # when the device has been silent, and to collect the final report
               dev.pause/resume/stop/estop
        dev.close()

    Times are integer µs of **device time** (the device's own clock); pulses are rows of the schedule's
    pulse dtype (``t_us`` int64, ``channel`` uint8 1-based, ``amplitude_ua`` int32, ``shape`` uint16 index
    into the shape table). ``poll()`` returns the neutral events of :mod:`stimscript.drivers.events`:
    :class:`PulsesDelivered`, :class:`StatusReport`, :class:`FaultReport`, :class:`DeviceLost`.

    Devices that are not timestamp-streaming (a device that generates its own pulse rate per channel
    and takes parameter updates, or one that is sent every pulse by the host when it is due) implement
    the same contract: ``prepare(schedule)`` hands them the whole session (trains, shapes, channels) to
    lower to their own program; ``send_block`` still delivers the exact pulses, a look-ahead ahead of
    their time, from which such a driver derives its updates (channel on/off, current, period) and sends
    them when due, from ``poll()``; it sets ``poll_interval_us`` to how often it needs to be called for
    that. It acknowledges a pulse (with its index) once the device's own counters or reports show it was
    delivered, never because it was sent. Raise :class:`~stimscript.errors.DriverError` (with a message
    a user can act on) for a schedule the device cannot reproduce.

    Use as a context manager::

        with stimscript.open_device("loopback") as dev:
            print(dev.capabilities())
    """

    #: registry name
    name = "driver"
    #: the longest the runtime may wait between two ``poll()`` calls during a session (µs). Host-timed
    #: drivers (which must send updates or pulses when they are due) lower it; None: no requirement
    #: beyond the runtime's own (4 polls per watchdog period, 4 per look-ahead in real time).
    poll_interval_us: int | None = None

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.is_open = False

    # ---- lifecycle ------------------------------------------------------------------------------------
    @abstractmethod
    def open(self) -> None:
        """Connect and identify the device; afterwards ``capabilities()`` is known. Raise DeviceNotFound,
        DeviceTimeout or ProtocolMismatch (all DriverError) when that fails, leaving nothing open."""

    @abstractmethod
    def close(self) -> None:
        """Output off (if a session is active), then disconnect. Safe to call twice, and after the device
        vanished (never raises for that)."""

    @abstractmethod
    def capabilities(self) -> DeviceProfile:
        """The device profile (channels, current range and step, phase range, rate, queue size, watchdog).
        The runtime refuses a schedule outside it before it starts."""

    @property
    def serial(self) -> str:
        """The device's serial number ("" when it has none)."""
        return ""

    @property
    def model(self) -> str:
        """The device model recorded with each session (default: the name of the profile it reports)."""
        try:
            return self.capabilities().name
        except Exception:
            return ""

    @property
    def emulated(self) -> bool:
        """True when this is an emulator, not a stimulator: its sessions are recorded as practice runs.
        Drivers reaching an emulator through a real transport (a pseudo-terminal, a pyusb backend) say so."""
        return getattr(self, "emulator", None) is not None

    #: where device time sits on the host clock, with a bound (drivers/timesync.py); None when the driver
    #: cannot tell (Lab Streaming Layer markers need it)
    time_sync: TimeSync | None = None

    @property
    def sync_lines(self) -> int:
        """How many TTL sync outputs the device has (0: none, the default)."""
        return 0

    def sync_out(self, line: int, width_us: int, t_us: np.ndarray) -> None:
        """Ask the device to raise sync output ``line`` for ``width_us`` at each device time in ``t_us``
        (non-decreasing). The device reports the edges it raised as :class:`~.events.SyncEdges`."""
        raise DriverError(f"device {self.model or type(self).__name__!r} has no sync output")

    def use_clock(self, clock) -> bool:
        """Make the device follow ``clock`` (a :class:`stimscript.clock.Clock`). Only an emulated
        device can: it returns True, and virtual-time runs become possible. Hardware returns False (the
        default), and the runtime then insists on real time."""
        return False

    # ---- streaming ------------------------------------------------------------------------------------
    def prepare(self, schedule) -> None:
        """Called once per session, before ``upload_shapes``/``start``, with the whole Schedule (``trains``,
        ``shapes``, ``channels``, ``duration_us``). Streaming devices need nothing here (the default does
        nothing); a device with its own timing model lowers the session to its program, and raises
        DriverError for what it cannot reproduce."""

    def fidelity(self, schedule) -> dict:
        """How faithfully this device reproduces ``schedule``: a fidelity report as a dict
        (``stimscript.programs.fidelity.FidelityReport.as_dict()``), stored in the session record. The
        default, {}, means the device plays the schedule exactly (timestamped streaming)."""
        return {}

    @abstractmethod
    def upload_shapes(self, shapes) -> None:
        """Store the pulse-shape table (index = the ``shape`` field of pulses); each shape has ``.phases``:
        (duration_us, relative amplitude) with the first phase at +1.0. Raise DeviceFault when the device
        refuses it. Called before ``start``."""

    @abstractmethod
    def start(self, epoch_us: int) -> None:
        """Begin a session whose t = 0 is device time ``epoch_us``: counters, pulse indexes and scale
        registers (all 1.0) start afresh; the device state becomes "running"."""

    @abstractmethod
    def send_block(self, pulses: np.ndarray) -> int:
        """Queue ``pulses`` (``t_us`` in device time, non-decreasing, never earlier than pulses queued
        before). Returns the index given to the first one; indexes count up from 0 per session (pulse i of
        the block gets first + i) and come back in PulsesDelivered records. Never more than ``queue_free()``
        at a time. A pulse the device gets after its time is dropped and counted as late (an underrun),
        never delivered late. Must not block on the device's answer."""

    @abstractmethod
    def poll(self) -> list:
        """Everything the device reported since the last call, as events (PulsesDelivered, StatusReport,
        FaultReport, DeviceLost), in the order it reported them; [] when nothing. Must not block for more
        than a few ms. Host-timed drivers also send whatever updates are due here."""

    @abstractmethod
    def status(self) -> DeviceStatus:
        """The host's current view of the device (state, queue level and capacity, counters, link
        statistics), from what the device last reported; no I/O."""

    def queue_free(self) -> int:
        """How many more pulses ``send_block`` may queue now (capacity minus queued minus in flight)."""
        return self.status().queue_free

    def device_time_us(self) -> int:
        """The device time now, as well as the host can estimate it (last reported device time plus host
        time elapsed since); the runtime stamps pulses and schedules controls with it."""
        return self.status().device_time_us

    def request_status(self) -> None:
        """Ask the device for a StatusReport (it arrives through ``poll()``). The runtime calls it when the
        device has been silent for too long and to collect the final report at the end of a session. The
        default does nothing (for a device that reports on its own at least every watchdog period)."""

    def keepalive(self) -> None:
        """Tell the device's watchdog the host is alive (called when nothing else was sent for a quarter of
        the watchdog period). The default does nothing."""

    def keepalive_train(self, clock, times_us: list[int]) -> None:
        """Feed the watchdog with a KEEPALIVE at each host time of ``times_us`` (ascending, none in the past),
        moving the runtime's virtual ``clock`` to each in turn; the clock is left at the last one. The runtime
        calls it only in virtual time, to keep its frames as close together as in real time between two wakes.
        Default: ``clock.sleep_until(t); keepalive()`` for each; an emulated device may take the train in one
        step when that changes nothing (drivers/loopback.py)."""
        for t in times_us:
            clock.sleep_until(t)
            self.keepalive()

    # ---- controls -------------------------------------------------------------------------------------
    @abstractmethod
    def stop(self, ramp_us: int = 1_000_000) -> None:
        """Ramp every output down linearly over ``ramp_us`` (0: at once), then off with the queue flushed;
        report state "stopping" (with ``ramp_end_us``), then "stopped"."""

    @abstractmethod
    def pause(self, ramp_us: int = 500_000) -> None:
        """Ramp down over ``ramp_us`` like ``stop``, then report "paused" with ``ramp_end_us`` = the device
        time the ramp ended; the queue is flushed and the session kept. The runtime re-sends the pulses
        not delivered, with new times, after ``resume``."""

    @abstractmethod
    def resume(self, at_us: int, ramp_us: int = 1_000_000) -> None:
        """Continue a paused session at device time ``at_us``, ramping up linearly over ``ramp_us``; report
        "running"."""

    @abstractmethod
    def estop(self) -> None:
        """Emergency stop: every output to zero at once, queue flushed, report "estopped". May be called
        from another thread (holding ``self.lock``), at any time, also twice; never waits for an answer."""

    @abstractmethod
    def set_scale(self, channel: int, factor) -> None:
        """Set the intensity scale of output ``channel`` (1-based) to ``factor`` (int, float or Fraction,
        0 <= factor <= 4), applied at pulse time to every pulse of that channel delivered from now on,
        queued ones included, so a change reaches the output within one pulse period. The runtime has
        already clamped it to what the channel may deliver. A device rounds to its own resolution."""

    def __enter__(self):
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_UNSEQUENCED = w.UNSEQUENCED
_ACK = w.ACK
_STATUS = w.STATUS


class WireDriver(Driver):
    """A driver speaking the stimscript wire protocol over a byte pipe."""

    read_size = 65536
    #: link timers (host time): a NAK is repeated while a gap stays open; held frames are sent again
    #: when the device has acknowledged nothing for RTO_US (it sends frames every 20 ms in a session)
    NAK_RETRY_US = 50_000
    RTO_US = 250_000
    #: the send times of at least this many recent frames are kept for the time sync (at most twice as many)
    SENT_AT_KEEP = 4096

    def __init__(self, timeout_ms: int = 1000) -> None:
        super().__init__()
        self.timeout_ms = timeout_ms
        self.link = w.Link(retx_frames=8192, nak_retry_us=self.NAK_RETRY_US, rto_us=self.RTO_US)
        self.profile: DeviceProfile | None = None
        self.hello: w.HelloInfo | None = None
        self._clock = None
        self.time_sync: TimeSync | None = None
        self._sent_at: dict[int, int] = {}   # host time each recent sequenced frame was sent (time sync)
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.next_index = 0
        self.sent_pulses = 0
        self.acked_pulses = 0
        self.last_status: w.StatusMsg | None = None
        self.faults: list[w.FaultMsg] = []
        self._dev_t = 0
        self._host_t: int | None = None
        self._queue_level = 0
        self._rx_total = 0
        self._late = 0
        self._pending: list = []

    # ---- transport (override) -------------------------------------------------------------------------
    @abstractmethod
    def _open_transport(self) -> None: ...

    @abstractmethod
    def _close_transport(self) -> None: ...

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def _read(self) -> bytes:
        """Whatever bytes the device has for us now (b"" when none); must not block for long."""

    def _host_now(self) -> int:
        if self._clock is not None:
            return self._clock.now_us()
        import time

        return time.monotonic_ns() // 1000

    def _wait(self, dt_us: int) -> None:
        """Between polls while waiting for an answer (virtual clocks advance, real ones sleep)."""
        if self._clock is not None and not self._clock.realtime:
            self._clock.advance(dt_us)
        else:
            import time

            time.sleep(dt_us / 1e6)

    # ---- lifecycle ------------------------------------------------------------------------------------
    def open(self) -> None:
        with self.lock:
            if self.is_open:
                return
            self._open_transport()
            self.is_open = True
            try:
                self._handshake()
            except BaseException:
                self.is_open = False
                self._close_transport()
                raise

    def _handshake(self) -> None:
        def hello():
            self.link.reset()
            self._send(w.HELLO, w.HELLO_STRUCT.pack(w.VERSION, 0))

        hello()
        msg = self._await(lambda m: isinstance(m, w.HelloInfo), "HELLO reply", nudge=hello, nudge_every_us=100_000)
        self.hello = msg
        self.profile = msg.profile
        self._note_time(msg.device_t_us)
        # an emulator follows the host's own clock: no drift between the two
        self.time_sync = TimeSync(drift_ppm=0 if self.emulated else DEFAULT_DRIFT_PPM)

    def close(self) -> None:
        with self.lock:
            if not self.is_open:
                return
            try:
                if self.last_status is not None and self.last_status.state in (w.RUNNING, w.PAUSING, w.STOPPING,
                                                                              w.PAUSED):
                    self._send(w.ESTOP)
            except DriverError:
                pass
            finally:
                self.is_open = False
                self._close_transport()

    def capabilities(self) -> DeviceProfile:
        if self.profile is None:
            raise DriverError("device not open")
        return self.profile

    @property
    def serial(self) -> str:
        return self.hello.serial if self.hello else ""

    # ---- frames ---------------------------------------------------------------------------------------
    def _send(self, mtype: int, payload: bytes = b"") -> None:
        with self.lock:
            link = self.link
            frame = link.send(mtype, payload)
            if mtype not in _UNSEQUENCED:
                seq = (link.tx_seq - 1) & 0xFFFF
                sent_at = self._sent_at
                if seq in sent_at:      # a seq used again (after a link reset): it moves to the end
                    del sent_at[seq]
                sent_at[seq] = self._clock.now_us() if self._clock is not None else self._host_now()
                if len(sent_at) > 2 * self.SENT_AT_KEEP:
                    self._trim_sent_at()
            self._write(frame)

    def _receive(self) -> list:
        """Read and decode what the device sent, answer for the link (NAKs, retransmissions) and run
        the link's timers, even when nothing arrived."""
        data = self._read()
        now = self._clock.now_us() if self._clock is not None else self._host_now()
        link = self.link
        if data:
            frames, reply = link.receive(data, now)
        else:
            frames, reply = [], b""
        if link.gap_open or (link.rto_us is not None and link.retx):   # a timer runs (Link.poll)
            reply += link.poll(now)
        else:
            link._now = now      # (all Link.poll does when no timer runs)
        if reply:
            self._write(reply)
        if not frames:
            return []
        out = []
        sync = self.time_sync
        for fr in frames:
            try:
                m = self._decode(fr, now)
            except (ValueError, IndexError) as exc:  # a well-framed but malformed payload
                raise ProtocolMismatch(f"malformed {fr.name} payload from the device: {exc}") from exc
            out.append(m)
            if sync is not None and (fr.mtype == _ACK or fr.mtype == _STATUS):
                # written after the device had our frame ``fr.ack``, read by us now (drivers/timesync.py)
                sent = self._sent_at.get(fr.ack)
                if sent is not None:
                    sync.add(m.device_t_us, sent, now)
        return out

    def _decode(self, fr: w.Frame, now: int | None = None):
        t = fr.mtype
        if t == _ACK:
            ack = w.decode_ack(fr.payload)
            dev_t = ack.device_t_us
            clock = self._clock
            if now is not None and clock is not None and not clock.realtime and self._host_t is not None:
                # (_note_time, inline: in virtual time the later of the report's stamp and the estimate)
                self._dev_t = max(dev_t, self._dev_t + (now - self._host_t))
                self._host_t = now
            else:
                self._note_time(dev_t, now)
            self._queue_level, self._rx_total, self._late = ack.queue_level, ack.rx_pulses_total, ack.late_total
            self.acked_pulses += len(ack.records)
            return ack
        if t == w.STATUS:
            status = w.decode_status(fr.payload)
            self._note_time(status.device_t_us)
            self._queue_level, self._rx_total, self._late = status.queue_level, status.rx_pulses_total, status.late_total
            self.last_status = status
            return status
        if t == w.FAULT:
            fault = w.decode_fault(fr.payload)
            self.faults.append(fault)
            return fault
        if t == w.HELLO_REPLY:
            return w.decode_hello_reply(fr.payload)
        if t == w.SYNC_EDGES:
            return w.decode_sync_edges(fr.payload)
        raise ProtocolMismatch(f"unexpected message type 0x{t:02X} from the device")

    def _note_time(self, dev_t: int, host_now: int | None = None) -> None:
        """A report stamped ``dev_t`` arrived: device time now is at least that.

        In virtual time host and device follow one clock (no drift), and a report stamped with the time of
        the event it reports (a pause ramp's end) arrives after that time: the estimate kept so far may
        already be later, and the later of the two is kept. Otherwise a resume placed at the estimate lay a
        few µs in the device's past and the pulses due at that instant arrived late. In real time the
        report's stamp is taken as it is (clocks drift; the runtime places controls with a lead). ``host_now``:
        the host time the report was read at, when the caller has it."""
        if host_now is None or self._clock is None or self._clock.realtime:
            host_now = self._host_now()
        if self._host_t is not None and self._clock is not None and not self._clock.realtime:
            dev_t = max(dev_t, self._dev_t + (host_now - self._host_t))
        self._dev_t = dev_t
        self._host_t = host_now

    def _await(self, pred, what: str, nudge=None, nudge_every_us: int = 20_000):
        """Poll until a message satisfying ``pred`` arrives (others are kept for the next poll()).

        Every ``nudge_every_us`` it sends ``nudge()`` (default STATUS_REQ): if our request was lost on the
        wire, the next sequenced frame makes the device see the gap and NAK, so it is retransmitted; if the
        answer was lost, the device's next sequenced frame (the STATUS) shows us the gap and we NAK."""
        nudge = nudge or (lambda: self._send(w.STATUS_REQ))
        deadline = self._host_now() + self.timeout_ms * 1000
        next_nudge = self._host_now() + nudge_every_us
        while True:
            for m in self._receive():
                if pred(m):
                    return m
                self._pending.append(m)
            now = self._host_now()
            if now >= deadline:
                raise DeviceTimeout(f"no {what} from the device within {self.timeout_ms} ms")
            if now >= next_nudge:
                nudge()
                next_nudge = now + nudge_every_us
            self._wait(1000)

    # ---- streaming ------------------------------------------------------------------------------------
    def upload_shapes(self, shapes) -> None:
        with self.lock:
            self._send(w.SHAPES, w.encode_shapes(shapes))
            m = self._await(lambda m: isinstance(m, (w.StatusMsg, w.FaultMsg)), "SHAPES confirmation")
            if isinstance(m, w.FaultMsg):
                from ..errors import DeviceFault

                raise DeviceFault(f"the device refused the pulse-shape table: {m.describe()}")

    def start(self, epoch_us: int) -> None:
        with self.lock:
            self._reset_counters()
            self._send(w.START, w.START_STRUCT.pack(int(epoch_us)))

    def send_block(self, pulses: np.ndarray) -> int:
        with self.lock:
            first = self.next_index
            n = len(pulses)
            for i in range(0, n, w.MAX_PULSES_PER_FRAME):
                part = pulses[i:i + w.MAX_PULSES_PER_FRAME]
                self._send(w.PULSES, w.encode_pulses(first + i, part["t_us"], part["channel"], part["amplitude_ua"],
                                                     part["shape"]))
            self.next_index += n
            self.sent_pulses += n
            return first

    def poll(self) -> list:
        with self.lock:
            if self._pending:
                msgs, self._pending = self._pending, []
                msgs += self._receive()
            else:
                msgs = self._receive()
                if not msgs:
                    return []
                if len(msgs) == 1:      # the usual case: one report
                    e = self._event(msgs[0])
                    return [e] if e is not None else []
            return [e for e in map(self._event, msgs) if e is not None]

    @staticmethod
    def _event(m):
        """A wire message as the runtime's neutral event (None for link-internal messages)."""
        if type(m) is w.AckMsg:
            return ev.delivered_event(m.device_t_us, m.records, m.late_total, m.queue_level)
        if isinstance(m, w.StatusMsg):
            return ev.StatusReport(m.device_t_us, m.state_name, m.delivered_total, m.late_total, m.flushed_total,
                                   m.queue_level, m.queue_capacity, m.ramp_end_us, dict(m.delivered),
                                   dict(m.peak_ua), tuple(m.scales_ppm), m.silent_total)
        if isinstance(m, w.FaultMsg):
            return ev.FaultReport(m.kind, m.channel, m.device_t_us, m.detail_text(), m.code != w.FAULT_ELECTRODE)
        if isinstance(m, w.SyncEdgesMsg):
            return ev.SyncEdges(m.line, m.t_us, m.raised_total, m.missed_total)
        return None

    def status(self) -> DeviceStatus:
        prof = self.profile
        cap = prof.queue_pulses if prof else 0
        in_flight = self.sent_pulses - self._rx_total
        st = self.last_status
        return DeviceStatus(
            device_time_us=self.device_time_us(), state=st.state_name if st else "idle",
            queue_level=self._queue_level, queue_capacity=cap,
            queue_free=max(0, cap - self._queue_level - in_flight), sent_pulses=self.sent_pulses,
            acked_pulses=self.acked_pulses, late_pulses=self._late, faults=list(self.faults),
            link=self.link.stats.as_dict())

    def queue_free(self) -> int:
        cap = self.profile.queue_pulses if self.profile else 0
        return max(0, cap - self._queue_level - (self.sent_pulses - self._rx_total))

    def device_time_us(self) -> int:
        """Estimated device time now: the last reported device time plus host time elapsed since."""
        if self._host_t is None:
            return self._dev_t
        clock = self._clock
        return self._dev_t + ((clock.now_us() if clock is not None else self._host_now()) - self._host_t)

    def request_status(self) -> None:
        self._send(w.STATUS_REQ)

    # ---- controls -------------------------------------------------------------------------------------
    def stop(self, ramp_us: int = 1_000_000) -> None:
        self._send(w.STOP, w.RAMP_STRUCT.pack(max(0, min(int(ramp_us), w.MAX_RAMP_US))))

    def pause(self, ramp_us: int = 500_000) -> None:
        self._send(w.PAUSE, w.RAMP_STRUCT.pack(max(0, min(int(ramp_us), w.MAX_RAMP_US))))

    def resume(self, at_us: int, ramp_us: int = 1_000_000) -> None:
        self._send(w.RESUME, w.RESUME_STRUCT.pack(int(at_us), max(0, min(int(ramp_us), w.MAX_RAMP_US))))

    def estop(self) -> None:
        self._send(w.ESTOP)

    def set_scale(self, channel: int, factor) -> None:
        """The scale register holds parts per million: ``factor`` is rounded half to even (exactly, for a
        Fraction). Channel 0 sets every channel at once (a wire-protocol extra)."""
        ppm = round(Fraction(factor) * w.SCALE_ONE)
        self._send(w.SET_SCALE, w.SET_SCALE_STRUCT.pack(int(channel), max(0, min(ppm, w.MAX_SCALE_PPM))))

    def keepalive(self) -> None:
        self._send(w.KEEPALIVE)

    def _frames_at(self, mtype: int, times_us: list[int]) -> list[bytes]:
        """Sequenced frames of ``mtype`` (no payload) to be sent at the host times ``times_us``, with the link's
        and the time sync's bookkeeping done as :meth:`_send` does it; the caller writes them at those times."""
        link = self.link
        sent_at = self._sent_at
        seq = link.tx_seq
        out = link.send_train(mtype, len(times_us))
        for t in times_us:
            if seq in sent_at:
                del sent_at[seq]
            sent_at[seq] = t
            seq = (seq + 1) & 0xFFFF
        if len(sent_at) > 2 * self.SENT_AT_KEEP:
            self._trim_sent_at()
        return out

    def _trim_sent_at(self) -> None:
        """Keep the send times of the latest SENT_AT_KEEP frames (in one step, not one deletion per frame)."""
        self._sent_at = dict(list(self._sent_at.items())[-self.SENT_AT_KEEP:])

    # ---- sync out (wire protocol extension) -------------------------------------------------------------
    @property
    def sync_lines(self) -> int:
        return self.hello.sync_lines if self.hello else 0

    def sync_out(self, line: int, width_us: int, t_us: np.ndarray) -> None:
        if not 1 <= int(line) <= self.sync_lines:
            raise DriverError(f"device {self.model!r} has no sync output {line} (it has {self.sync_lines})")
        if not 1 <= int(width_us) <= w.MAX_SYNC_WIDTH_US:
            raise DriverError(f"sync pulse width {width_us} µs is outside 1 .. {w.MAX_SYNC_WIDTH_US} µs")
        t = np.asarray(t_us, dtype=np.int64)
        for i in range(0, len(t), w.MAX_EDGES_PER_FRAME):
            self._send(w.SYNC_OUT, w.encode_sync_out(line, width_us, t[i:i + w.MAX_EDGES_PER_FRAME]))
