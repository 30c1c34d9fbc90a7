"""ScienceMode drivers: Hasomed P24 (8 channels) and RehaMove3 (4 channels) over a serial port.

``open_device("p24", port="/dev/ttyACM0")`` or ``stimscript run FILE --device p24 --port /dev/ttyACM0``.

**Mid level** (default): the device times the pulses. ``prepare(schedule)`` lowers the session to a
periodic program (:mod:`stimscript.programs.periodic`): each on-phase switches its channel on with the
device period nearest the schedule's, its current follows the envelope by updates, and the channel is
switched off at the end of the on-phase. ``poll()`` sends each update when it is due (so the runtime is asked
to poll every 5 ms), and ml_get_current_data every 0.5 s as the keep-alive and to read each channel's
state. **Low level** (``mode="low-level"``): every pulse is sent as ll_channel_config when it is due and
the device acknowledges each after it ran.

Packets are numbered 0..63; every command has an answer with the same number. Nothing waits for an
answer (except while opening): answers are matched in ``poll()``; a command without an answer within
``timeout_ms`` is sent again (as a fresh packet with the state of now), ``retries`` times, after which the
device counts as lost. A transfer error is re-sent at once; any other non-zero result is an error of its
class (messages.result_error). An electrode error (or pulse timeout / low current) reported for a channel
ends the session as a fault: the channel's pulses after the last report that showed it healthy are not
acknowledged, so the record counts only what the device confirmed.

ScienceMode devices do not acknowledge mid-level pulses one by one. A pulse of the schedule is
acknowledged when a later ml_get_current_data answer shows its channel still running without error; its
time and amplitude in the acknowledgement are the scheduled ones with the device's current rounding
(the fidelity report gives how far the device's own phase and count can differ).

First sessions on real hardware: the driver caps every current at ``max_current_ma`` (default 20 mA; the
profile it reports carries the cap, so a protocol above it does not compile), and ``dry_run=True`` sends
nothing anywhere: the frames are printed (with ``echo``) and answered by an emulator in the process.
"""
from __future__ import annotations

import sys
from collections import deque
from typing import TYPE_CHECKING
from dataclasses import replace
from fractions import Fraction

import numpy as np

from ...errors import DeviceFault, DeviceNotFound, DeviceTimeout, DriverError
from ...clock import Clock, VirtualClock
from ...profile import DeviceProfile
from .. import events as ev
from ..base import DeviceDisconnected, Driver
from . import frame as F
from . import messages as M

if TYPE_CHECKING:
    from ...programs.fidelity import FidelityReport
    from ...programs.periodic import OnPhase
    from .transport import PtyServer, SerialLink

DEFAULT_MAX_CURRENT_MA = 20
KEEPALIVE_EVERY_US = 500_000
STATUS_EVERY_US = 500_000


class _Outstanding:
    __slots__ = ("pn", "cmd", "data", "sent_us", "tries", "what")

    def __init__(self, pn, cmd, data, sent_us, what):
        self.pn, self.cmd, self.data, self.sent_us, self.tries, self.what = pn, cmd, data, sent_us, 1, what


class ScienceModeDriver(Driver):
    """Base of the P24 and RehaMove3 drivers (``MODEL`` names the timing model and emulator spec)."""

    MODEL = "p24"
    PROFILE: DeviceProfile
    read_size = 65536
    #: virtual time: how long (real seconds) the host waits for the emulator's thread to read a frame and
    #: answer before the clock moves on. Normally a fraction of a millisecond; generous so a machine busy
    #: with other work cannot starve that thread into acting on a frame after its virtual time
    VIRTUAL_SYNC_S = 10.0

    def __init__(self, port: str | None = None, mode: str = "mid-level", *, emulator=None, dry_run: bool = False,
                 max_current_ma: float = DEFAULT_MAX_CURRENT_MA, timeout_ms: int = 300, retries: int = 3,
                 echo=None, baudrate: int = 3_000_000):
        super().__init__()
        if mode not in ("mid-level", "low-level"):
            raise DriverError(f"mode must be mid-level or low-level, not {mode!r}")
        from ...programs.models import model_for

        self.mode = mode
        self.timing_model = model_for(self.MODEL, mode)
        self.port = port
        self.emulator = emulator
        self.dry_run = bool(dry_run)
        self.max_current_ua = int(round(Fraction(str(max_current_ma)) * 1000))
        if not 0 < self.max_current_ua <= self.timing_model.max_current_ua:
            raise DriverError(f"max_current_ma must be in (0, {self.timing_model.max_current_ua / 1000:g}] mA")
        self.timeout_us = int(timeout_ms) * 1000
        self.retries = int(retries)
        self.echo = echo if echo is not None else (lambda s: print(s, file=sys.stderr)) if dry_run else None
        self.baudrate = baudrate
        self.poll_interval_us = 5_000 if mode == "mid-level" else 1_000
        self.profile = replace(self.PROFILE, max_current_ua=min(self.PROFILE.max_current_ua, self.max_current_ua))
        self.info = M.DeviceInfo()
        self._clock: Clock | None = None
        self._link: SerialLink | None = None
        self._server: PtyServer | None = None
        self.fidelity_report: FidelityReport | None = None   # of the prepared session (prepare())
        self._reader = F.FrameReader()
        self._numbers = F.PacketNumbers()
        self._out: dict[int, _Outstanding] = {}
        self._events: list = []
        self.frames_sent = 0
        self._bytes_in = 0
        self.frames_received = 0
        self.resent = 0
        self.transfer_errors = 0
        self._session = False
        self._reset_session()

    # ---- time -----------------------------------------------------------------------------------------
    def _now(self) -> int:
        if self._clock is not None:
            return self._clock.now_us()
        import time

        return time.monotonic_ns() // 1000

    @property
    def _virtual(self) -> bool:
        return self._clock is not None and not self._clock.realtime

    def use_clock(self, clock) -> bool:
        if self.emulator is None:
            return False
        self.emulator.set_clock(clock)
        self._clock = clock
        return True

    # ---- lifecycle ------------------------------------------------------------------------------------
    @property
    def serial(self) -> str:
        return self.info.device_id

    @property
    def model(self) -> str:
        """The device model recorded with each session ("p24", "rehamove3")."""
        return self.MODEL

    @property
    def emulated(self) -> bool:
        """An emulator (in this process, a dry run, or `stimscript emulate`, whose ids contain "EMU")."""
        return self.emulator is not None or "EMU" in self.info.device_id

    def capabilities(self) -> DeviceProfile:
        return self.profile

    def open(self) -> None:
        with self.lock:
            if self.is_open:
                return
            from .transport import PtyServer, SerialLink

            if self.dry_run and self.emulator is None:
                from .emulator import ScienceModeEmulator

                self.emulator = ScienceModeEmulator(self.MODEL)
            if self.port is None:
                if self.emulator is None:
                    from .transport import serial_ports

                    found = ", ".join(p for p, _ in serial_ports()) or "none found"
                    raise DeviceNotFound(f"{self.name}: which serial port? pass port=... (--port PATH); serial "
                                         f"ports: {found}; or try it offline with --dry-run or `stimscript "
                                         f"emulate {self.MODEL}`")
                server = self._server = PtyServer(self.emulator).start()
                self.port = server.path
            self._link = SerialLink(self.port, self.baudrate)
            self.is_open = True
            try:
                self._identify()
            except BaseException:
                self.is_open = False
                self._close_link()
                raise

    def _identify(self) -> None:
        _, data = self._call(M.GET_DEVICE_ID, b"")
        _, dev_id = M.decode_device_id(data)
        _, data = self._call(M.GET_VERSION, b"")
        _, fw, smv = M.decode_version(data)
        _, data = self._call(M.GET_BATTERY, b"")
        _, pct, mv = M.decode_battery(data)
        _, data = self._call(M.GET_STIM_STATUS, b"")
        _, status, hv = M.decode_stim_status(data)
        self.info = M.DeviceInfo(dev_id, fw, smv, pct, mv, status, hv)
        if status in (M.STIM_MID_INIT, M.STIM_MID_RUNNING):     # left running by someone: make it safe
            self._call(M.ML_STOP, b"")
        elif status == M.STIM_LOW_LEVEL:
            self._call(M.LL_STOP, b"")

    def close(self) -> None:
        with self.lock:
            if not self.is_open:
                return
            try:
                if self._session:
                    self._send(M.ML_STOP if self.mode == "mid-level" else M.LL_STOP, b"", "stop on close")
            except DriverError:
                pass
            finally:
                self.is_open = False
                self._close_link()

    def _close_link(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        if self._server is not None:
            self._server.stop()
            self._server = None
            self.port = None

    # ---- frames ---------------------------------------------------------------------------------------
    def _write(self, raw: bytes) -> None:
        if self._link is None:
            raise DeviceDisconnected(f"{self.name}: the serial port is closed")
        self._link.write(raw)

    def _send(self, cmd: int, data: bytes, what: str = "", track: bool = True, tries: int = 1) -> int:
        pn = self._numbers.take()
        raw = F.encode(pn, cmd, data)
        self.frames_sent += 1
        if self.echo is not None:
            self.echo(f"-> {self._now() / 1e6:12.6f} s  pn {pn:2d}  {M.describe(cmd, data)}  [{raw.hex(' ')}]")
        self._write(raw)
        if track:
            self._out[pn] = _Outstanding(pn, cmd, data, self._now(), what or M.COMMAND_NAMES.get(cmd, str(cmd)))
            self._out[pn].tries = tries
        if self._virtual:
            self._settle(pn)
        return pn

    def _settle(self, pn: int) -> None:
        """Virtual time: let the emulator (another thread, across the terminal) read the frame before the
        clock moves on: wait (real time, at most 1 s) until it has counted every frame sent."""
        import time

        emu = self.emulator
        if emu is None:
            return
        deadline = time.monotonic() + self.VIRTUAL_SYNC_S
        while emu.rx_frames < self.frames_sent and time.monotonic() < deadline and not emu.disconnected:
            time.sleep(0.0002)
        self._catch_up()

    def _catch_up(self) -> None:
        """Virtual time: read every answer the emulator has due by now before the clock moves on."""
        import time

        emu, server, link = self.emulator, self._server, self._link
        if emu is None or server is None or link is None:
            self._receive()
            return
        deadline = time.monotonic() + self.VIRTUAL_SYNC_S
        while time.monotonic() < deadline and not emu.disconnected:
            self._receive()
            if emu.due_answers() == 0 and server.bytes_out == self._bytes_in:
                return
            link.wait_readable(0.0005)

    def _receive(self) -> None:
        data = self._link.read() if self._link is not None else b""
        if not data:
            return
        self._bytes_in += len(data)
        for item in self._reader.feed(data):
            if isinstance(item, F.FrameError):
                self.transfer_errors += 1
                continue
            self.frames_received += 1
            self._answer(item)

    def _call(self, cmd: int, data: bytes) -> tuple[int, bytes]:
        """Send and wait for the answer (only while opening): (result, payload)."""
        for _attempt in range(self.retries + 1):
            pn = self._send(cmd, data)
            deadline = self._now() + max(self.timeout_us, 100_000)
            while True:
                self._receive()
                got = self._sync_answers.pop(pn, None)
                if got is not None:
                    result, payload = got
                    if result == M.TRANSFER_ERROR:
                        break
                    if result != M.OK:
                        raise M.result_error(result, M.COMMAND_NAMES.get(cmd, str(cmd)))
                    return result, payload
                if self._now() >= deadline:
                    break
                if isinstance(self._clock, VirtualClock):
                    import time

                    time.sleep(0.001)
                    self._clock.advance(1000)
                elif self._link is not None:
                    self._link.wait_readable(0.005)
            self._out.pop(pn, None)
            self.resent += 1
        raise DeviceTimeout(f"{self.name} on {self.port}: no answer to {M.COMMAND_NAMES.get(cmd, cmd)} "
                            f"({self.retries + 1} tries, {self.timeout_us // 1000} ms each): is it switched on "
                            "and is this its port?")

    def _answer(self, fr: F.Frame) -> None:
        out = self._out.pop(fr.packet_number, None)
        cmd = fr.command
        result = fr.data[0] if fr.data else M.OK
        if cmd in (M.GENERAL_ERROR, M.UNKNOWN_CMD):
            if out is not None:
                self._events.append(("error", out, result))
            return
        if out is None or cmd != out.cmd + 1:
            return                      # a late answer to a packet we gave up on
        self._sync_answers[fr.packet_number] = (result, bytes(fr.data))
        if result == M.TRANSFER_ERROR:
            self.resent += 1
            self._resend(out)
            return
        if cmd == M.ML_GET_CURRENT_DATA_ACK:
            self._on_current_data(fr.data, out)
        elif cmd == M.LL_CHANNEL_CONFIG_ACK:
            self._on_ll_ack(fr.data, out)
        elif result != M.OK and self._session:
            self._fail(M.result_error(result, out.what))

    def _resend(self, out: _Outstanding) -> None:
        if out.tries > self.retries:
            self._lost(f"{out.what}: no good answer after {out.tries} tries")
            return
        if out.cmd == M.ML_UPDATE:
            data = self._update_payload(self._now())
        else:
            data = out.data
        if out.cmd == M.LL_CHANNEL_CONFIG:
            item = self.ll_inflight.pop(out.pn, None)
            pn = self._send(out.cmd, data, out.what, tries=out.tries + 1)
            if item is not None:
                self.ll_inflight[pn] = item
            return
        self._send(out.cmd, data, out.what, tries=out.tries + 1)

    def _check_timeouts(self, now: int) -> None:
        for out in list(self._out.values()):
            if now - out.sent_us >= self.timeout_us:
                self._out.pop(out.pn, None)
                if out.cmd == M.LL_CHANNEL_CONFIG:
                    continue        # its pulse's fate is unknown: never acknowledged
                if out.what == "final" and out.tries > self.retries:
                    self._halt(ev.STOPPED)
                    continue
                self.resent += 1
                self._resend(out)

    # ---- session --------------------------------------------------------------------------------------
    def _reset_session(self) -> None:
        self._sync_answers: dict = {}
        self.state = ev.IDLE
        self.epoch = 0
        self.offset = 0
        self.timeline: list = []
        self._tl_pos = 0
        self.scale: dict[int, Fraction] = {}
        self.current: dict = {}          # channel -> ChannelSetting in force (as last sent)
        self.pulses: deque = deque()     # (index, t_us device, channel, amplitude, shape) not yet acknowledged
        self.cutoff_us = None            # pulses at or after this device time were not delivered (pause)
        self.silent = 0
        self.next_index = 0
        self.acked = 0
        self.faults: list = []
        self.last_tx = 0
        self.last_status_req = 0
        self.ramp: tuple | None = None   # (kind, start_us, end_us) of a stop/pause ramp
        self.ramp_end_us = 0
        self.paused_at: int | None = None   # device time of the pause (state PAUSED)
        self.delivered: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.dead_channels: set = set()
        self.program_phases: list[OnPhase] = []
        self._period_lag = 0
        self.shapes = ()
        self.ll_queue: deque = deque()   # low level: pulses to send (index, t, ch, amp, shape)
        self.ll_inflight: dict = {}

    def prepare(self, schedule) -> None:
        """Lower the session to the device's program; refuse what the device cannot do (DriverError).

        The device rules (D001–D005) are those ``stimscript check --device`` decides, in the same words
        (programs/fidelity.py); here they guard the device against a schedule that was never checked for it."""
        from ...programs.fidelity import fidelity, load_refusal, period_refusal, points_refusal
        from ...programs.models import PERIODIC
        from ...programs.periodic import lower_periodic, timeline

        m = self.timing_model
        where = f"`stimscript check FILE --device {self.MODEL}` shows where"
        for i, shape in enumerate(schedule.shapes):
            too_many = points_refusal(shape.phases, m)
            if too_many:
                raise DriverError(f"{self.name}: pulse shape {i} ({shape.kind}): {too_many} (D001; {where})")
        if m.family == PERIODIC:
            for tr in schedule.trains:
                refused = period_refusal(Fraction(tr.period), m)
                if refused is not None:
                    code, words = refused
                    raise DriverError(f"{self.name}: channel {tr.channel}: {words} ({code}; {where})")
        self.fidelity_report = fidelity(schedule, m)
        if m.family == PERIODIC:
            self.program_phases = lower_periodic(schedule, m)
            self.timeline = timeline(self.program_phases)
            self._period_lag = max((p.device_period_us for p in self.program_phases), default=0)
            overload = load_refusal(self.fidelity_report.load_peak, m, [])
            if overload:
                raise DriverError(f"{self.name}: {overload} (D005; {where})")

    def fidelity(self, schedule=None) -> dict:
        """The fidelity report of the prepared session (for the record)."""
        rep = self.fidelity_report
        if rep is None and schedule is not None:
            from ...programs.fidelity import fidelity

            rep = fidelity(schedule, self.timing_model)
        return rep.as_dict() if rep is not None else {}

    def upload_shapes(self, shapes) -> None:
        self.shapes = tuple(shapes)

    def start(self, epoch_us: int) -> None:
        with self.lock:
            timeline, phases, shapes, lag = self.timeline, self.program_phases, self.shapes, self._period_lag
            self._reset_session()
            self.timeline, self.program_phases, self.shapes, self._period_lag = timeline, phases, shapes, lag
            self.epoch = self.offset = int(epoch_us)
            if self.mode == "mid-level":
                self._send(M.ML_INIT, b"\x00", "ml_init")
            else:
                self._send(M.LL_INIT, M.encode_ll_init(0), "ll_init")
            self._session = True
            self.state = ev.RUNNING
            self.last_tx = self.last_status_req = self._now()
            self._events.append(ev.StatusReport(self._now(), ev.RUNNING, queue_capacity=self.profile.queue_pulses))

    def send_block(self, pulses: np.ndarray) -> int:
        with self.lock:
            first = self.next_index
            for k, p in enumerate(pulses):
                item = (first + k, int(p["t_us"]), int(p["channel"]), int(p["amplitude_ua"]), int(p["shape"]))
                if self.mode == "mid-level":
                    self.pulses.append(item)
                else:
                    self.ll_queue.append(item)
            self.next_index += len(pulses)
            return first

    def queue_free(self) -> int:
        return max(0, self.profile.queue_pulses - len(self.pulses) - len(self.ll_queue))

    def device_time_us(self) -> int:
        return self._now()

    def status(self) -> ev.DeviceStatus:
        return ev.DeviceStatus(
            device_time_us=self._now(), state=self.state, queue_level=len(self.pulses) + len(self.ll_queue),
            queue_capacity=self.profile.queue_pulses, queue_free=self.queue_free(), sent_pulses=self.next_index,
            acked_pulses=self.acked, late_pulses=0, faults=list(self.faults), link=self.link_stats())

    def link_stats(self) -> dict:
        return {"frames_sent": self.frames_sent, "frames_received": self.frames_received, "resent": self.resent,
                "transfer_errors": self.transfer_errors, "port": self.port or "", "mode": self.mode,
                "device_id": self.info.device_id,
                "firmware": ".".join(map(str, self.info.firmware))}

    # ---- the program ----------------------------------------------------------------------------------
    def _quantised(self, channel: int, amplitude_ua: int, factor: Fraction) -> int:
        from ...programs.periodic import quantise

        ua = quantise(Fraction(amplitude_ua) * factor, self.timing_model.current_step_ua)
        return max(0, min(ua, self.max_current_ua))

    def _points(self, shape_index: int, amplitude_ua: int) -> tuple:
        from ...programs.fidelity import shape_points

        pts = shape_points(self.shapes[shape_index].phases, amplitude_ua, self.timing_model)
        return tuple(M.Point(d, c // 500) for d, c in pts)

    def _ramp_factor(self, now: int) -> Fraction:
        if self.ramp is None:
            return Fraction(1)
        kind, t0, t1 = self.ramp
        if t1 <= t0:
            return Fraction(0) if kind != "resume" else Fraction(1)
        x = Fraction(min(max(now - t0, 0), t1 - t0), t1 - t0)
        return x if kind == "resume" else 1 - x

    def _update_payload(self, now: int) -> bytes:
        chans = {}
        rf = self._ramp_factor(now)
        for ch, s in self.current.items():
            if ch in self.dead_channels:
                continue
            amp = self._quantised(ch, s.amplitude_ua, self.scale.get(ch, Fraction(1)) * rf)
            if amp <= 0:
                continue
            code = s.device_period_us // (250 if s.fine else 500)
            chans[ch - 1] = M.MlChannel(code, self._points(s.shape, amp), 0, s.fine)
        return M.encode_ml_update(chans)

    def _send_update(self, now: int, what: str) -> None:
        self._send(M.ML_UPDATE, self._update_payload(now), what)
        self.last_tx = now

    def _run_program(self, now: int) -> None:
        changed = False
        session_t = now - self.offset
        while self._tl_pos < len(self.timeline) and self.timeline[self._tl_pos][0] <= session_t:
            self.current = dict(self.timeline[self._tl_pos][1])
            self._tl_pos += 1
            changed = True
        if self.ramp is not None:
            changed = changed or (now - self.last_tx >= 20_000)
        if self._scale_dirty:
            changed = True
            self._scale_dirty = False
        if changed:
            self._send_update(now, "ml_update")

    _scale_dirty = False

    # ---- poll -----------------------------------------------------------------------------------------
    def poll(self) -> list:
        with self.lock:
            if not self.is_open:
                return []
            try:
                if self._virtual:
                    self._catch_up()
                else:
                    self._receive()
                now = self._now()
                self._check_timeouts(now)
                if self._session and self.state in (ev.RUNNING, ev.PAUSING, ev.STOPPING):
                    if self.mode == "mid-level":
                        self._run_program(now)
                        self._ramp_progress(now)
                    else:
                        self._run_low_level(now)
                if self._session and self.state not in (ev.ESTOPPED, ev.FAULTED) and self.mode == "mid-level" \
                        and now - self.last_status_req >= STATUS_EVERY_US:
                    self._request_data(now)
            except DeviceDisconnected as exc:
                self._events.append(ev.DeviceLost(str(exc)))
            out, self._events = self._events, []
            return [e for e in out if not isinstance(e, tuple)]

    def _request_data(self, now: int) -> None:
        self._send(M.ML_GET_CURRENT_DATA, bytes((self._selector(),)), "ml_get_current_data")
        self.last_status_req = self.last_tx = now

    def _selector(self) -> int:
        return M.SELECT_CHANNELS if self.MODEL == "p24" else M.SELECT_STIMULATION

    def _on_current_data(self, data: bytes, out: _Outstanding) -> None:
        try:
            cd = M.decode_current_data(data, self.profile.channels)
        except ValueError:
            self.transfer_errors += 1
            return
        if cd.result != M.OK:
            if self._session and self.state not in (ev.STOPPED, ev.ESTOPPED, ev.IDLE):
                self._fail(M.result_error(cd.result, "ml_get_current_data"))
            return
        asked = out.sent_us
        for i, st in enumerate(cd.states):
            ch = i + 1
            if st != M.CHANNEL_OK and ch not in self.dead_channels:
                self.dead_channels.add(ch)
                result = M.CHANNEL_STATE_RESULT.get(st, M.ELECTRODE_ERROR)
                kind = M.FAULT_KIND.get(result, "device")
                err = M.result_error(result, "stimulation", ch)
                self.faults.append(str(err))
                self._events.append(ev.FaultReport(kind, ch, self._now(), str(err), output_off=False))
        # the device was running these channels without error when it answered: acknowledge what was due
        # before we asked (minus the update latency, so a pulse not yet switched on is not counted)
        lat = self.timing_model.update_latency_us[1]
        if out.what == "final":
            self._acknowledge(asked - lat)
            self._halt(ev.STOPPED)
            return
        # a pulse scheduled at t has certainly run by t + latency + one device period (its own phase)
        limit = asked - lat - self._period_lag
        expect_running = {ch for ch in self.current if ch not in self.dead_channels}
        if self.state == ev.RUNNING and expect_running and not any(cd.running[ch - 1] for ch in expect_running
                                                                  if ch <= len(cd.running)) \
                and asked - self.last_tx > lat and not self.ramp:
            self._fail(DeviceFault(f"{self.name}: the device stopped stimulating on its own (keep-alive or "
                                   "device fault)"), kind="watchdog")
            return
        self._acknowledge(limit)

    def _acknowledge(self, limit: int) -> None:
        recs = []
        while self.pulses and self.pulses[0][1] <= limit:
            idx, t, ch, amp, shape = self.pulses.popleft()
            if ch in self.dead_channels:
                continue
            if (self.cutoff_us is not None and t >= self.cutoff_us) or (self.ramp and t >= self.ramp[2]):
                continue
            delivered = self._quantised(ch, amp, self.scale.get(ch, Fraction(1)) * self._ramp_factor(t))
            if delivered <= 0:
                self.silent += 1           # ramped or scaled to zero: intended, not lost
                continue
            recs.append((idx, t, ch, delivered))
        if recs:
            arr = np.array(recs, dtype=ev.DELIVERY_DTYPE)
            self.acked += len(arr)
            for _, _, ch, amp in recs:
                self.delivered[ch] = self.delivered.get(ch, 0) + 1
                self.peak[ch] = max(self.peak.get(ch, 0), amp)
            self._events.append(ev.PulsesDelivered(self._now(), arr, None, len(self.pulses)))

    def _fail(self, err: DriverError, kind: str = "device") -> None:
        self.faults.append(str(err))
        self._events.append(ev.FaultReport(kind, 0, self._now(), str(err), output_off=True))

    def _lost(self, reason: str) -> None:
        self._events.append(ev.DeviceLost(f"{self.name} on {self.port}: {reason}"))

    # ---- low level ------------------------------------------------------------------------------------
    def _run_low_level(self, now: int) -> None:
        while self.ll_queue and self.ll_queue[0][1] <= now and len(self.ll_inflight) < self.timing_model.device_buffer:
            idx, t, ch, amp, shape = self.ll_queue.popleft()
            if ch in self.dead_channels:
                continue
            ua = self._quantised(ch, amp, self.scale.get(ch, Fraction(1)) * self._ramp_factor(t))
            if self.ramp is not None and t >= self.ramp[2]:
                continue
            if ua <= 0:
                self.silent += 1
                continue
            pn = self._send(M.LL_CHANNEL_CONFIG, M.encode_ll_channel_config(ch - 1, self._points(shape, ua)),
                            "ll_channel_config")
            self.ll_inflight[pn] = (idx, now, ch, ua)
            self.last_tx = now
        self._ramp_progress(now)

    def _on_ll_ack(self, data: bytes, out: _Outstanding) -> None:
        item = self.ll_inflight.pop(out.pn, None)
        try:
            result, _ = M.decode_ll_config_ack(data)
        except ValueError:
            return
        if item is None:
            return
        idx, t, ch, ua = item
        if result == M.OK:
            self.acked += 1
            self.delivered[ch] = self.delivered.get(ch, 0) + 1
            self.peak[ch] = max(self.peak.get(ch, 0), ua)
            self._events.append(ev.PulsesDelivered(self._now(), np.array([(idx, t, ch, ua)], dtype=ev.DELIVERY_DTYPE),
                                                   None, len(self.ll_queue)))
        elif result in (M.ELECTRODE_ERROR, M.PULSE_TIMEOUT, M.PULSE_LOW_CURRENT):
            if ch not in self.dead_channels:
                self.dead_channels.add(ch)
                err = M.result_error(result, "ll_channel_config", ch)
                self.faults.append(str(err))
                self._events.append(ev.FaultReport(M.FAULT_KIND.get(result, "device"), ch, self._now(), str(err),
                                                   output_off=False))
        elif self._session:
            self._fail(M.result_error(result, "ll_channel_config"))

    # ---- controls -------------------------------------------------------------------------------------
    def _ramp_progress(self, now: int) -> None:
        if self.ramp is None:
            return
        kind, t0, t1 = self.ramp
        if now < t1:
            return
        if kind == "resume":
            self.ramp = None
            self._scale_dirty = True
            return
        self.ramp = None
        if kind == "stop":
            self._halt(ev.STOPPED)
        else:   # pause: everything off, the session kept
            if self.mode == "mid-level":
                self.current = {}
                self._send_update(now, "ml_update (pause)")
            self.pulses = deque(p for p in self.pulses if p[1] < t1)   # those still await confirmation
            self.ll_queue.clear()
            self.cutoff_us = t1
            self.state = ev.PAUSED
            self.paused_at = t1
            self._events.append(ev.StatusReport(now, ev.PAUSED, self.acked, ramp_end_us=t1,
                                                delivered=dict(self.delivered), peak_ua=dict(self.peak),
                                                silent_total=self.silent))

    def _halt(self, state: str) -> None:
        """Output off at once: stop command, queues flushed, final report."""
        try:
            self._send(M.ML_STOP if self.mode == "mid-level" else M.LL_STOP, b"", "stop", track=False)
        finally:
            self.pulses.clear()
            self.ll_queue.clear()
            self.ll_inflight.clear()
            self.current = {}
            self.state = state
            self._session = False
            self._events.append(ev.StatusReport(self._now(), state, self.acked, ramp_end_us=self._now(),
                                                delivered=dict(self.delivered), peak_ua=dict(self.peak),
                                                silent_total=self.silent))

    def stop(self, ramp_us: int = 1_000_000) -> None:
        with self.lock:
            if not self._session:
                return
            now = self._now()
            if ramp_us <= 0 or self.state == ev.PAUSED:
                if self.mode == "mid-level" and self.state == ev.RUNNING and ramp_us <= 0:
                    # the session's own end: one last question confirms what ran, then everything off
                    self.current = {}
                    self._send_update(now, "ml_update (end)")
                    self._send(M.ML_GET_CURRENT_DATA, bytes((self._selector(),)), "final")
                    self.state = ev.STOPPING
                    return
                self._halt(ev.STOPPED)
                return
            self.ramp = ("stop", now, now + int(ramp_us))
            self.state = ev.STOPPING
            self._events.append(ev.StatusReport(now, ev.STOPPING, self.acked, ramp_end_us=now + int(ramp_us)))

    def pause(self, ramp_us: int = 500_000) -> None:
        with self.lock:
            if not self._session or self.state != ev.RUNNING:
                return
            now = self._now()
            self.ramp = ("pause", now, now + int(ramp_us))
            self.state = ev.PAUSING
            self._events.append(ev.StatusReport(now, ev.PAUSING, self.acked, ramp_end_us=now + int(ramp_us)))

    def resume(self, at_us: int, ramp_us: int = 1_000_000) -> None:
        with self.lock:
            paused_at = self.paused_at
            if self.state != ev.PAUSED or paused_at is None:
                return
            self._acknowledge(int(paused_at))      # what ran before the pause was confirmed by now
            self.pulses.clear()
            self.cutoff_us = None
            self.offset += int(at_us) - int(paused_at)
            self.ramp = ("resume", int(at_us), int(at_us) + int(ramp_us))
            self._tl_pos = 0
            self.current = {}
            self.state = ev.RUNNING
            self._events.append(ev.StatusReport(self._now(), ev.RUNNING, self.acked))

    def estop(self) -> None:
        with self.lock:
            if not self.is_open:
                return
            if self._session:
                try:
                    self._halt(ev.ESTOPPED)
                except DriverError:
                    self.state = ev.ESTOPPED
                    self._session = False
            elif self.state not in (ev.ESTOPPED,):
                try:
                    self._send(M.ML_STOP if self.mode == "mid-level" else M.LL_STOP, b"", "stop", track=False)
                except DriverError:
                    pass

    def set_scale(self, channel: int, factor) -> None:
        with self.lock:
            f = Fraction(factor).limit_denominator(10**6) if not isinstance(factor, Fraction) else factor
            self.scale[int(channel)] = max(Fraction(0), min(f, Fraction(4)))
            self._scale_dirty = True

    def request_status(self) -> None:
        with self.lock:
            if not self.is_open:
                return
            if self._session and self.mode == "mid-level":
                self._request_data(self._now())
            self._events.append(ev.StatusReport(self._now(), self.state, self.acked,
                                                queue_level=len(self.pulses) + len(self.ll_queue),
                                                queue_capacity=self.profile.queue_pulses,
                                                ramp_end_us=self.ramp[2] if self.ramp else 0,
                                                delivered=dict(self.delivered), peak_ua=dict(self.peak)))

    def keepalive(self) -> None:
        with self.lock:
            if self._session and self.mode == "mid-level" and self._now() - self.last_tx >= KEEPALIVE_EVERY_US:
                self._request_data(self._now())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.mode} port={self.port!r} id={self.info.device_id!r}>"


class P24Driver(ScienceModeDriver):
    """Hasomed P24: 8 channels, 0.25 ms period grid, ScienceMode 4 (USB CDC serial)."""

    name = "p24"
    MODEL = "p24"
    from ...programs.models import P24_PROFILE as PROFILE


class RehaMove3Driver(ScienceModeDriver):
    """Hasomed RehaMove3: 4 channels, 0.5 ms period grid, one current source (FTDI USB serial)."""

    name = "rehamove3"
    MODEL = "rehamove3"
    from ...programs.models import REHAMOVE3_PROFILE as PROFILE
