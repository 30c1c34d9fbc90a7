"""Session controls usable from another thread or a UI loop, and the progress/event types.

``SessionController`` methods only enqueue a command and wake the dispatcher (``emergency_stop`` also
sends ESTOP at once from the calling thread). In virtual time, ``at(t_us, action, *args)`` schedules a
control at a session time (µs after the session start on the device clock) so tests are deterministic::

    ctl = SessionController()
    ctl.at(12_000_000, "intensity_up")
    ctl.at(20_000_000, "estop")
    record = stimscript.run(schedule, controller=ctl)

Actions: "pause", "resume", "stop", "estop" (= "emergency_stop"), "intensity_up" / "intensity_down"
(param, step_ua, channels), "set_intensity" (value, param, channels), "stall" (duration_us: the host stops
talking, for watchdog tests).

Intensity is per output channel. ``intensity_up(channel=1)`` raises channel 1 by one step (1 mA by
default) of its own amplitude; ``intensity_up(param="intensity")`` moves every channel that follows that
param together (proportionally: a channel at ``80% intensity`` moves 0.8 mA per 1 mA of the param);
with neither, every channel moves by one step. A channel can always be lowered to 0 mA and never raised
above the top of its checked range; each request produces an ``intensity`` event whose ``detail`` says
what happened ("quad 45 → 46 mA", "quad at the top of its range (60 mA)").
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field

ACTIONS = ("pause", "resume", "stop", "estop", "emergency_stop", "intensity_up", "intensity_down", "set_intensity",
           "stall")


@dataclass
class Progress:
    """A snapshot of a running session (what a display shows)."""

    state: str = "starting"          # starting | running | pausing | paused | stopping | ending | ended
    elapsed_us: int = 0              # schedule time reached (pauses excluded)
    remaining_us: int = 0
    session_us: int = 0              # device time since the session start (pauses included)
    segment: str = ""                # label of the current schedule segment
    amplitude_ua: dict = field(default_factory=dict)   # channel -> last delivered amplitude
    delivered: dict = field(default_factory=dict)      # channel -> pulses acknowledged
    intensity_ua: dict = field(default_factory=dict)   # param -> applied value (µA), when its channels agree
    target_ua: dict = field(default_factory=dict)      # param -> requested value (µA), when its channels agree
    underruns: int = 0
    queue_level: int = 0
    channel_ua: dict = field(default_factory=dict)         # channel -> full amplitude the device acknowledged
    channel_target_ua: dict = field(default_factory=dict)  # channel -> full amplitude requested
    channel_range_ua: dict = field(default_factory=dict)   # channel -> (lowest, highest) reachable (µA)
    paused_us: int = 0                                     # time spent paused so far


@dataclass
class Event:
    """Passed to ``on_event``: kind in started | progress | paused | resumed | stopping | intensity | fault |
    underrun | ended, the session time and a Progress snapshot."""

    kind: str
    t_us: int
    progress: Progress
    detail: str = ""


class SessionController:
    """Controls for one session at a time (re-usable afterwards)."""

    #: a pause longer than this ends the session as "stopped" (its record says why): a session cannot stay
    #: paused for ever (in virtual time nothing may ever resume it; in real time the patient is long gone)
    DEFAULT_MAX_PAUSE_S = 30 * 60

    def __init__(self, intensity_step_ua: int = 1000, slew_ua_per_s: int = 10_000, pause_ramp_ms: int = 500,
                 resume_ramp_ms: int = 1000, stop_ramp_ms: int = 1000, max_pause_s: float = DEFAULT_MAX_PAUSE_S):
        if not 0 <= stop_ramp_ms <= 1000:
            raise ValueError("a stop ramps down within at most 1 s")
        if not 0 < max_pause_s <= 24 * 3600:
            raise ValueError("the pause limit is more than 0 s and at most 24 h")
        #: the pause limit in µs (see DEFAULT_MAX_PAUSE_S)
        self.max_pause_us = int(max_pause_s * 1_000_000)
        self.intensity_step_ua = int(intensity_step_ua)
        self.slew_ua_per_s = int(slew_ua_per_s)
        self.pause_ramp_ms = int(pause_ramp_ms)
        self.resume_ramp_ms = int(resume_ramp_ms)
        self.stop_ramp_ms = int(stop_ramp_ms)
        self._commands: deque = deque()
        self._scheduled: list = []
        self._counter = itertools.count()
        self.wake = threading.Event()
        self._dispatcher = None
        # signals (Ctrl-C) are handed to a helper thread, never handled inside the signal handler
        # (which could deadlock on a lock the main thread holds); the dispatcher waits for the helper
        # to have handled every posted signal before it moves on, so the order of events is kept
        self._signals_posted = 0     # written only by the signal handler (main thread)
        self._signals_handled = 0    # written only by the helper thread
        self.progress = Progress()
        self.events: list[Event] = []

    # ---- commands (thread-safe) ----------------------------------------------------------------------
    def _post(self, action: str, *args) -> None:
        self._commands.append((action, args))
        self.wake.set()

    def pause(self) -> None:
        self._post("pause")

    def resume(self) -> None:
        self._post("resume")

    def stop(self) -> None:
        """Ramp down (at most 1 s), then end the session as "stopped"."""
        self._post("stop")

    def emergency_stop(self) -> None:
        """Output to zero at once, device queue flushed; the session ends as "emergency_stop"."""
        d = self._dispatcher
        if d is not None:
            d.emergency_stop_now()
        self._post("estop")

    estop = emergency_stop

    def intensity_up(self, param: str | None = None, step_ua: int | None = None, channel=None) -> None:
        """One step up: ``channel`` (a number or several), the channels following ``param``, or all."""
        self._post("intensity_up", param, step_ua, channel)

    def intensity_down(self, param: str | None = None, step_ua: int | None = None, channel=None) -> None:
        """One step down (down to 0 mA, below the param's minimum if need be: the record notes it)."""
        self._post("intensity_down", param, step_ua, channel)

    def set_intensity(self, value, param: str | None = None, channel=None) -> None:
        """``value``: µA (int), a Quantity, or text such as "45 mA": the param's value (its channels follow
        proportionally), or with ``channel`` that channel's full amplitude; clamped to 0 .. the range's top."""
        self._post("set_intensity", value, param, channel)

    def at(self, t_us: int, action: str, *args) -> None:
        """Schedule ``action`` at session time ``t_us`` (device clock, µs after the session start)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown control {action!r} (known: {', '.join(ACTIONS)})")
        heapq.heappush(self._scheduled, (int(t_us), next(self._counter), action, args))

    # ---- dispatcher side -----------------------------------------------------------------------------
    def _settle_signals(self, timeout_s: float = 0.5) -> None:
        """Wait (briefly) until every posted signal has been turned into a control command."""
        if self._signals_handled >= self._signals_posted:
            return
        deadline = time.monotonic() + timeout_s
        while self._signals_handled < self._signals_posted and time.monotonic() < deadline:
            time.sleep(0.0002)

    def _attach(self, dispatcher) -> None:
        self._dispatcher = dispatcher

    def _detach(self) -> None:
        self._dispatcher = None

    def _next_scheduled_us(self) -> int | None:
        return self._scheduled[0][0] if self._scheduled else None

    def _due(self, session_t_us: int) -> list:
        if self.wake.is_set():      # (clear() takes the event's lock even when there is nothing to clear)
            self.wake.clear()
        if not self._commands and (not self._scheduled or self._scheduled[0][0] > session_t_us):
            return []
        out = []
        while self._scheduled and self._scheduled[0][0] <= session_t_us:
            t, _, action, args = heapq.heappop(self._scheduled)
            out.append((action, args))
        while self._commands:
            out.append(self._commands.popleft())
        return out
