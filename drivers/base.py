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
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ..errors import DeviceTimeout, DriverError, ProtocolMismatch
from ..profile import DeviceProfile
from . import wire as w


class DeviceDisconnected(DriverError):
    """The device went away mid-session (USB unplugged, cable, power)."""


@dataclass
class DeviceStatus:
    """What the host knows about the device (the latest report plus what it sent since)."""

    device_time_us: int = 0
    state: str = "idle"
    queue_level: int = 0
    queue_capacity: int = 0
    queue_free: int = 0
    sent_pulses: int = 0
    acked_pulses: int = 0
    late_pulses: int = 0
    faults: list = field(default_factory=list)
    link: dict = field(default_factory=dict)


class Driver(ABC):
    """Base class of every stimulator driver. Use as a context manager::

        with stimscript.open_device("loopback") as dev:
            print(dev.capabilities())
    """

    #: registry name
    name = "driver"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.is_open = False

    # ---- lifecycle ------------------------------------------------------------------------------------
    @abstractmethod
    def open(self) -> None:
        """Connect and handshake (HELLO); afterwards ``capabilities()`` is known."""

    @abstractmethod
    def close(self) -> None:
        """Output off and disconnect. Safe to call twice."""

    @abstractmethod
    def capabilities(self) -> DeviceProfile:
        """The device profile (channels, limits, queue size, watchdog)."""

    @property
    def serial(self) -> str:
        return ""

    def use_clock(self, clock) -> bool:
        """Make the device follow ``clock`` (only emulated devices can; hardware returns False)."""
        return False

    # ---- streaming ------------------------------------------------------------------------------------
    @abstractmethod
    def upload_shapes(self, shapes) -> None:
        """Upload the pulse-shape table (index = the ``shape`` field of pulse records)."""

    @abstractmethod
    def start(self, epoch_us: int) -> None:
        """Begin a session whose t = 0 is device time ``epoch_us``; resets counters and pulse indexes."""

    @abstractmethod
    def send_block(self, pulses: np.ndarray) -> int:
        """Queue pulses (PULSE_DTYPE, ``t_us`` in device time, non-decreasing). Returns the index given to
        the first one; indexes count up from 0 per session and come back in acknowledgements."""

    @abstractmethod
    def poll(self) -> list:
        """Read what the device reported since the last call: AckMsg / StatusMsg / FaultMsg objects."""

    @abstractmethod
    def status(self) -> DeviceStatus:
        """The host's current view of the device."""

    def queue_free(self) -> int:
        return self.status().queue_free

    def device_time_us(self) -> int:
        return self.status().device_time_us

    # ---- controls -------------------------------------------------------------------------------------
    @abstractmethod
    def stop(self, ramp_us: int = 1_000_000) -> None:
        """Ramp output down over ``ramp_us`` (device side), then off with the queue flushed."""

    @abstractmethod
    def pause(self, ramp_us: int = 500_000) -> None: ...

    @abstractmethod
    def resume(self, at_us: int, ramp_us: int = 1_000_000) -> None: ...

    @abstractmethod
    def estop(self) -> None:
        """Emergency stop: output zero at once, queue flushed."""

    @abstractmethod
    def set_scale(self, channel: int, factor: float) -> None:
        """Set the intensity scale register of ``channel`` (0 = all channels), applied at pulse time."""

    def keepalive(self) -> None:
        """Tell the device watchdog the host is alive."""

    def __enter__(self):
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WireDriver(Driver):
    """A driver speaking the stimscript wire protocol over a byte pipe."""

    read_size = 65536

    def __init__(self, timeout_ms: int = 1000) -> None:
        super().__init__()
        self.timeout_ms = timeout_ms
        self.link = w.Link(retx_frames=8192)
        self.profile: DeviceProfile | None = None
        self.hello: w.HelloInfo | None = None
        self._clock = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.next_index = 0
        self.sent_pulses = 0
        self.acked_pulses = 0
        self.last_status: w.StatusMsg | None = None
        self.faults: list[w.FaultMsg] = []
        self._dev_t = 0
        self._host_t = None
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
            self._write(self.link.send(mtype, payload))

    def _receive(self) -> list:
        data = self._read()
        if not data:
            return []
        frames, reply = self.link.receive(data)
        if reply:
            self._write(reply)
        out = []
        for fr in frames:
            try:
                out.append(self._decode(fr))
            except (ValueError, IndexError) as exc:  # a well-framed but malformed payload
                raise ProtocolMismatch(f"malformed {fr.name} payload from the device: {exc}") from exc
        return out

    def _decode(self, fr: w.Frame):
        t = fr.mtype
        if t == w.ACK:
            m = w.decode_ack(fr.payload)
            self._note_time(m.device_t_us)
            self._queue_level, self._rx_total, self._late = m.queue_level, m.rx_pulses_total, m.late_total
            self.acked_pulses += len(m.records)
            return m
        if t == w.STATUS:
            m = w.decode_status(fr.payload)
            self._note_time(m.device_t_us)
            self._queue_level, self._rx_total, self._late = m.queue_level, m.rx_pulses_total, m.late_total
            self.last_status = m
            return m
        if t == w.FAULT:
            m = w.decode_fault(fr.payload)
            self.faults.append(m)
            return m
        if t == w.HELLO_REPLY:
            return w.decode_hello_reply(fr.payload)
        raise ProtocolMismatch(f"unexpected message type 0x{t:02X} from the device")

    def _note_time(self, dev_t: int) -> None:
        self._dev_t = dev_t
        self._host_t = self._host_now()

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
            out, self._pending = self._pending, []
            out += self._receive()
            return out

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
        return self._dev_t + (self._host_now() - self._host_t)

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

    def set_scale(self, channel: int, factor: float) -> None:
        ppm = int(round(float(factor) * w.SCALE_ONE))
        self._send(w.SET_SCALE, w.SET_SCALE_STRUCT.pack(int(channel), max(0, min(ppm, w.MAX_SCALE_PPM))))

    def set_scale_ppm(self, channel: int, ppm: int) -> None:
        self._send(w.SET_SCALE, w.SET_SCALE_STRUCT.pack(int(channel), max(0, min(int(ppm), w.MAX_SCALE_PPM))))

    def keepalive(self) -> None:
        self._send(w.KEEPALIVE)
