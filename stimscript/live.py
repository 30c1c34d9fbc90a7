"""The clinician's front end for a running session: a live display (rich) and keyboard controls.

Everything here drives the runtime only through its public seams, so another front end (a GUI, a web
page, a foot switch) can do the same:

* :class:`LiveState` is an ``on_event`` callback that keeps what the display needs;
  :func:`render` turns a :class:`View` snapshot into a rich renderable (a pure function, tested by
  rendering to text).
* :class:`KeyHandler` maps keys to :class:`~stimscript.runtime.SessionController` calls
  (space pause/resume, ``+``/``-`` intensity, ``s`` stop, ``e`` emergency stop) and implements the
  Ctrl-C rule: the first interrupt stops with a ramp-down, the second is an emergency stop.
* :class:`KeyReader` reads keys without blocking from a thread (terminal in cbreak mode on POSIX,
  restored on every exit path); :func:`interrupt_signals` routes SIGINT/SIGTERM/SIGHUP to the handler.
* :class:`PlainReporter` is the display without a terminal (CI, a pipe): a few progress lines.
* :func:`run_session` puts them together for ``stimscript run``; :func:`summary` is the end-of-session text.
"""
from __future__ import annotations

import os
import re
import queue
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from .runtime.controls import Event, Progress, SessionController

KEY_LEGEND = (("1-8", "channel"), ("a", "all"), ("+/-", "1 mA"), ("space", "pause/resume"),
              ("s/q/Esc", "stop"), ("e", "EMERGENCY STOP"), ("Ctrl-C", "stop, 2×: e-stop"))
KEY_HELP = ("keys: 1-8 select a channel, a all channels, + / - raise / lower the selected ones by 1 mA, "
            "space pause/resume, s q Esc stop (ramped), e EMERGENCY STOP")

END_TEXT = {
    "completed": "the whole session was delivered",
    "degraded": "ran to its end, but NOT every scheduled pulse was delivered",
    "stopped": "stopped by the user, output ramped down",
    "emergency_stop": "EMERGENCY STOP, output switched off at once",
    "fault": "the device reported a FAULT and switched the output off",
    "disconnected": "the link to the device was LOST; the device watchdog ends output",
    "interrupted": "the session did not finish normally",
}

#: exit codes of ``stimscript run``
EXIT_OK = 0          # completed, or stopped by the user
EXIT_ABNORMAL = 2    # emergency stop, fault, disconnected, interrupted
EXIT_DEGRADED = 3    # ran to its end, but not every scheduled pulse was delivered
EXIT_RECORD = 4      # the session ended normally, but its record is not in the database (journal / unsaved)


def exit_code(end_reason: str, storage: str = "") -> int:
    if end_reason == "degraded":
        return EXIT_DEGRADED
    if end_reason not in ("completed", "stopped"):
        return EXIT_ABNORMAL
    return EXIT_RECORD if storage in ("journal", "memory") else EXIT_OK


# ---- static session information ----------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelRow:
    number: int
    name: str = ""
    site: str = ""
    frequency_hz: float = 0.0


@dataclass(frozen=True)
class SessionInfo:
    """What does not change during a session (title, channels, param ranges)."""

    title: str = ""
    session: int = 1
    week: int = 1
    duration_us: int = 0
    device: str = ""
    realtime: bool = False
    channels: tuple = ()                     # ChannelRow
    ranges: dict = field(default_factory=dict)  # param -> (lo_ua, hi_ua)
    patient_id: str | None = None
    final_intensity_ua: dict = field(default_factory=dict)   # param -> µA when the session ended
    trains: tuple = ()                       # the schedule's trains (cycle phases and counts for the display)
    segments: tuple = ()                     # the schedule's labelled blocks and pauses

    @classmethod
    def from_schedule(cls, schedule, device: str = "", realtime: bool = False, param_ranges: dict | None = None,
                      patient_id: str | None = None) -> "SessionInfo":
        from .runtime.dispatcher import _to_ua

        rows = []
        for c in getattr(schedule, "channels", ()) or ():
            site = (c.site or "").replace("_", " ")
            if site and c.side:
                site += f", {c.side}"
            rows.append(ChannelRow(c.number, c.name, site, float(c.frequency_hz or 0)))
        known = {r.number for r in rows}
        for tr in schedule.trains:
            if tr.channel not in known:
                known.add(tr.channel)
                rows.append(ChannelRow(tr.channel))
        ranges = {}
        for name, r in (param_ranges or {}).items():
            r = getattr(r, "range", r)
            if r:
                try:
                    ranges[name] = (_to_ua(r[0]), _to_ua(r[1]))
                except Exception:  # a param that is not a current: nothing to show
                    pass
        return cls(title=getattr(schedule, "title", "") or "", session=getattr(schedule, "session", 1),
                   week=getattr(schedule, "week", 1), duration_us=schedule.duration_us, device=str(device),
                   realtime=realtime, channels=tuple(sorted(rows, key=lambda r: r.number)), ranges=ranges,
                   patient_id=patient_id, trains=tuple(schedule.trains),
                   segments=tuple(getattr(schedule, "segments", ()) or ()))


@dataclass(frozen=True)
class View:
    """One frame of the display: everything :func:`render` needs."""

    info: SessionInfo
    progress: Progress
    status: str = "STARTING"
    active: frozenset = frozenset()   # channels delivering pulses right now
    message: str = ""
    keys: bool = True                 # show the key legend (keys are read)
    selected: tuple | None = None     # channels the +/- keys change (None: all)


def status_label(state: str, end_reason: str | None = None, estop: bool = False, stop_requested: bool = False) -> str:
    """The state word shown to the clinician."""
    if estop or end_reason == "emergency_stop":
        return "ESTOP"
    if end_reason:
        return end_reason.upper().replace("_", " ")
    if state == "running" and stop_requested:
        return "STOPPING"
    return {"starting": "STARTING", "running": "RUNNING", "pausing": "PAUSING", "paused": "PAUSED",
            "stopping": "STOPPING", "ending": "ENDING", "ended": "ENDED"}.get(state, state.upper())


STATUS_STYLE = {"RUNNING": "bold green", "PAUSED": "bold yellow", "PAUSING": "yellow", "STOPPING": "bold yellow",
                "STOPPED": "bold yellow", "COMPLETED": "bold green", "ESTOP": "bold white on red",
                "FAULT": "bold white on red", "DISCONNECTED": "bold white on red", "INTERRUPTED": "bold red"}


#: states in which output may be flowing (elsewhere the display shows 0 mA)
LIVE_STATES = ("STARTING", "RUNNING", "PAUSING", "STOPPING")


def mmss(us: int) -> str:
    s = max(0, int(us)) // 1_000_000
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def ma(ua: int) -> str:
    from .formatting import ma as fmt_ma

    return fmt_ma(ua)


@dataclass(frozen=True)
class Where:
    """Where a channel is in its cycle at one schedule time (for coaching the patient)."""

    block: str = ""            # the segment label ("set 2/3 · repeat 10 × contraction")
    contraction: int = 0       # 1-based number of the contraction within the block (0: none)
    contractions: int = 0
    phase: str = ""            # "ramp up" | "hold" | "ramp down" | "rest" | "" (no train)
    phase_left_us: int = 0     # until the end of this phase
    next_in_us: int | None = None   # until the next contraction starts (None: none left in the block)


def where(info: SessionInfo, t_us: int, channel: int | None = None) -> Where:
    """The block, contraction number and cycle phase at schedule time ``t_us`` (of ``channel``, or of the
    first channel that has a train running then)."""
    seg = None
    for sg in info.segments:
        if sg.start_us <= t_us < sg.end_us:
            seg = sg
            break
    label = seg.label if seg is not None else ""
    lo = seg.start_us if seg is not None else 0
    hi = seg.end_us if seg is not None else info.duration_us
    for tr in sorted(info.trains, key=lambda tr: (tr.channel, tr.start_us)):
        if channel is not None and tr.channel != channel:
            continue
        if not (tr.start_us <= t_us < tr.end_us) or tr.cycle_us <= 0:
            continue
        base = max(tr.start_us, lo - (lo - tr.start_us) % tr.cycle_us) if tr.start_us < lo else tr.start_us
        end = min(tr.end_us, hi)
        k, off = divmod(t_us - base, tr.cycle_us)
        total = -(-(end - base) // tr.cycle_us)
        if off < tr.ramp_up_us:
            phase, left = "ramp up", tr.ramp_up_us - off
        elif off < tr.on_us - tr.ramp_down_us:
            phase, left = "hold", tr.on_us - tr.ramp_down_us - off
        elif off < tr.on_us:
            phase, left = "ramp down", tr.on_us - off
        else:
            phase, left = "rest", tr.cycle_us - off
        nxt = tr.cycle_us - off if k + 1 < total else None
        if phase == "hold" and tr.on_us == tr.cycle_us:
            phase = "on"
        return Where(label, int(k) + 1, int(total), phase, int(left), nxt)
    return Where(label)


def render(view: View):
    """The live display for one :class:`View` (a pure function: same view, same picture)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    info, p = view.info, view.progress
    status = view.status
    head = Text()
    head.append(f"session {info.session} · week {info.week}")
    if info.patient_id:
        head.append(f" · patient {info.patient_id}")
    if info.device:
        head.append(f" · device {info.device} · {'real time' if info.realtime else 'simulated (fast)'}")

    total = max(1, info.duration_us)
    top = Table.grid(padding=(0, 2))
    top.add_column(no_wrap=True)
    top.add_column(no_wrap=True)
    top.add_column(no_wrap=True)
    top.add_row(Text(f" {status} ", style=STATUS_STYLE.get(status, "bold")),
                Text(f"elapsed {mmss(p.elapsed_us)} / {mmss(info.duration_us)}"),
                Text(f"remaining {mmss(p.remaining_us)}"))
    bar = Table.grid(padding=(0, 1))
    bar.add_column(ratio=1)
    bar.add_column(no_wrap=True, justify="right")
    bar.add_row(ProgressBar(total=total, completed=min(total, p.elapsed_us), width=None),
                Text(f"{100 * min(total, p.elapsed_us) / total:5.1f} %"))

    lines = Table.grid(padding=(0, 1))
    lines.add_column(style="bold", no_wrap=True)
    lines.add_column()
    here = where(info, p.elapsed_us)
    lines.add_row("block", here.block or p.segment or "–")
    if here.phase:
        cyc = Text()
        if here.contractions:
            cyc.append(f"contraction {here.contraction}/{here.contractions}", style="bold")
            cyc.append(" · ")
        cyc.append(here.phase, style="bold green" if here.phase in ("hold", "on") else "bold")
        if here.phase == "rest":
            cyc.append(f" · next contraction in {mmss(here.next_in_us)}" if here.next_in_us is not None
                       else " · last contraction of this block done")
        else:
            cyc.append(f" · {mmss(here.phase_left_us)} left")
        lines.add_row("now", cyc)
    if p.paused_us or status in ("PAUSED", "PAUSING"):
        lines.add_row("paused", mmss(p.paused_us))
    lines.add_row("underruns", Text(str(p.underruns), style="bold red" if p.underruns else ""))

    chans = Table(box=None, padding=(0, 2), header_style="bold", expand=False)
    chans.add_column("ch", justify="right", no_wrap=True)
    chans.add_column("name", no_wrap=True)
    chans.add_column("site", no_wrap=True)
    chans.add_column("target", justify="right", no_wrap=True)
    chans.add_column("delivered", justify="right", no_wrap=True)
    chans.add_column("range", justify="right", no_wrap=True)
    chans.add_column("pulses", justify="right", no_wrap=True)
    for row in info.channels:
        n = p.delivered.get(row.number, 0)
        if not n:
            now = Text("–", style="dim")
        elif row.number in view.active and status in LIVE_STATES:
            now = Text(ma(p.amplitude_ua.get(row.number, 0)), style="bold")
        else:
            now = Text("0 mA", style="dim")
        acked = p.channel_ua.get(row.number)
        tgt = p.channel_target_ua.get(row.number)
        target = Text(ma(acked) if acked is not None else "–", style="bold")
        if tgt is not None and acked is not None and tgt != acked:
            target.append(f" → {ma(tgt)}", style="cyan")
        rng = p.channel_range_ua.get(row.number)
        sel = view.selected is None or row.number in view.selected
        mark = "▶" if (sel and view.keys and p.channel_ua) else " "
        chans.add_row(f"{mark}{row.number}", row.name, row.site, target, now,
                      Text(f"0–{ma(rng[1])}" if rng else "", style="dim"), str(n))

    parts = [head, top, bar, lines, Text(""), chans]
    if view.message:
        parts += [Text(""), Text(view.message, style="italic")]
    if view.keys and status in LIVE_STATES + ("PAUSED",):
        legend = Text()
        for i, (k, what) in enumerate(KEY_LEGEND):
            if i:
                legend.append("  ")
            legend.append(f" {k} ", style="bold reverse" if k != "e" else "bold white on red")
            legend.append(f" {what}")
        parts += [Text(""), legend]
    elif info.realtime is False:
        parts += [Text(""), Text("simulated session: keys are not read (Ctrl-C stops)", style="dim")]
    return Panel(Group(*parts), title=Text(info.title or "stimscript session", style="bold"),
                 title_align="left", border_style="red" if status == "ESTOP" else "blue")


def render_text(view: View, width: int = 100) -> str:
    """:func:`render` as plain text (for tests and logs)."""
    import io

    from rich.console import Console

    con = Console(record=True, width=width, file=io.StringIO(), color_system=None, force_terminal=False)
    con.print(render(view))
    return con.export_text()


# ---- state kept from the runtime's events ------------------------------------------------------------
class LiveState:
    """``on_event`` callback: keeps the latest Progress and what the display derives from it. Thread-safe."""

    def __init__(self, info: SessionInfo, keys: bool = True):
        self.info = info
        self.keys = keys
        self.progress = Progress(remaining_us=info.duration_us)
        self.end_reason: str | None = None
        self.estop = False
        self.stop_requested = False
        self.message = ""
        self.selected: tuple | None = None
        self.events: list[str] = []
        self._last_count: dict[int, int] = {}
        self._last_change: dict[int, int] = {}
        self._lock = threading.Lock()

    def _window_us(self, ch: int) -> int:
        f = next((r.frequency_hz for r in self.info.channels if r.number == ch), 0.0)
        return max(400_000, int(2.5e6 / f) if f else 0)

    def on_event(self, ev: Event) -> None:
        with self._lock:
            p = ev.progress
            self.progress = p
            for ch, n in p.delivered.items():
                if n != self._last_count.get(ch, 0):
                    self._last_count[ch] = n
                    self._last_change[ch] = p.session_us
            if ev.kind == "intensity" and ev.detail:
                self.message = ev.detail
            elif ev.kind == "ended":
                self.end_reason = ev.detail or "completed"
            elif ev.kind == "fault":
                self.message = f"fault: {ev.detail}"
            elif ev.kind == "underrun":
                self.message = f"underrun: {ev.detail}"
            if ev.kind != "progress" and ev.kind != "intensity":
                self.events.append(ev.kind)

    def note(self, message: str) -> None:
        with self._lock:
            self.message = message

    def active(self) -> frozenset:
        p = self.progress
        return frozenset(ch for ch, t in self._last_change.items() if p.session_us - t <= self._window_us(ch))

    def status(self) -> str:
        return status_label(self.progress.state, self.end_reason, self.estop, self.stop_requested)

    def view(self) -> View:
        with self._lock:
            return View(self.info, replace(self.progress), self.status(), self.active(), self.message, self.keys,
                        self.selected)

    def __rich__(self):
        return render(self.view())


# ---- keys -> controller ------------------------------------------------------------------------------
_ESC = re.compile(r"\x1b\[[0-9;]*[A-Za-z~]|\x1bO[A-Za-z]|\x1b")


class KeyHandler:
    """Maps keys to SessionController calls. ``feed(text)`` handles several keys; ``interrupt()`` is Ctrl-C.

    ``1``-``8`` select that channel, ``a`` all channels · ``+``/``=``/up-arrow raise the selected channels by
    one step, ``-``/``_``/down-arrow lower them (the dispatcher answers with what happened, shown as the
    message) · space pause/resume · ``s``/``q``/Esc stop (ramp-down) · ``e`` emergency stop · Ctrl-C
    (``\\x03`` when the terminal delivers it as a key, or SIGINT): the first stops with a ramp-down, the second
    is an emergency stop · any other key shows the key help.
    """

    def __init__(self, controller: SessionController, state: LiveState | None = None):
        self.ctl = controller
        self.state = state
        self.interrupts = 0
        self._paused = False
        self.selected: tuple | None = None   # None: every channel
        self.actions: list[str] = []
        self._lock = threading.Lock()

    def _note(self, msg: str) -> None:
        if self.state is not None:
            self.state.note(msg)

    def feed(self, data) -> list[str]:
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        done = []
        pos = 0
        while pos < len(data):
            m = _ESC.match(data, pos)
            if m:
                key = {"\x1b[A": "up", "\x1bOA": "up", "\x1b[B": "down", "\x1bOB": "down",
                       "\x1b": "esc"}.get(m.group(0))
                pos = m.end()
            else:
                key = data[pos]
                pos += 1
            if key is not None:
                act = self.handle(key)
                if act:
                    done.append(act)
        return done

    def handle(self, key: str) -> str | None:
        """One key -> the action taken ("pause", "resume", "intensity_up", ...) or None (ignored)."""
        with self._lock:
            if key in (" ",):
                self._paused = not self._paused
                if self._paused:
                    self.ctl.pause()
                    act = "pause"
                    self._note("pause: output ramps down; press space to resume")
                else:
                    self.ctl.resume()
                    act = "resume"
                    self._note("resume: output ramps up")
            elif key in ("+", "=", "up"):
                self.ctl.intensity_up(channel=self.selected)
                act = "intensity_up"
                self._note(f"{self._selection_text()}: raising by {self.ctl.intensity_step_ua / 1000:g} mA …")
            elif key in ("-", "_", "down"):
                self.ctl.intensity_down(channel=self.selected)
                act = "intensity_down"
                self._note(f"{self._selection_text()}: lowering by {self.ctl.intensity_step_ua / 1000:g} mA …")
            elif len(key) == 1 and key in "12345678":
                act = self._select(int(key))
            elif key in ("a", "A"):
                self.selected = None
                self._sync_selection()
                self._note("all channels selected: + / - change every channel")
                act = "select"
            elif key in ("s", "S", "q", "Q", "esc"):
                act = self._stop()
            elif key in ("e", "E"):
                act = self._estop("e")
            elif key == "\x03":
                act = None
            else:
                self._note(KEY_HELP)
                return None
        if key == "\x03":
            act = self.interrupt()
        self.actions.append(act)
        return act

    def _channels(self) -> dict:
        if self.state is None:
            return {}
        return {r.number: r for r in self.state.info.channels}

    def _selection_text(self) -> str:
        if self.selected is None:
            return "all channels"
        rows = self._channels()
        return ", ".join((rows[c].name or f"channel {c}") if c in rows else f"channel {c}" for c in self.selected)

    def _select(self, number: int) -> str | None:
        rows = self._channels()
        if rows and number not in rows:
            self._note(f"there is no channel {number} in this protocol (channels: {', '.join(map(str, rows))}); "
                       "a selects all")
            return None
        self.selected = (number,)
        self._sync_selection()
        name = rows[number].name if number in rows and rows[number].name else f"channel {number}"
        self._note(f"{name} (channel {number}) selected: + / - change it; a selects all")
        return "select"

    def _sync_selection(self) -> None:
        if self.state is not None:
            self.state.selected = self.selected

    def _stop(self) -> str:
        self.ctl.stop()
        if self.state is not None:
            self.state.stop_requested = True
        self._note("stop: output ramps down, then the session ends")
        return "stop"

    def _estop(self, why: str) -> str:
        if self.state is not None:
            self.state.estop = True
        self.ctl.emergency_stop()
        self._note(f"EMERGENCY STOP ({why}): output off")
        return "emergency_stop"

    def interrupt(self) -> str:
        """Ctrl-C: the first stops with a ramp-down, the second (and later) is an emergency stop."""
        with self._lock:
            self.interrupts += 1
            if self.interrupts == 1:
                act = self._stop()
                self._note("Ctrl-C: stopping with a ramp-down (Ctrl-C again: emergency stop)")
            else:
                act = self._estop("second Ctrl-C")
        return act


class KeyReader:
    """A daemon thread reading keys from file descriptor ``fd`` into ``handler.feed``.

    When ``fd`` is a terminal it is put in cbreak mode (keys arrive at once, no echo; Ctrl-C still sends
    SIGINT) and restored in ``__exit__`` whatever happened. Any other fd (a pipe in tests) is read as is.
    """

    def __init__(self, handler: KeyHandler, fd: int | None = None, poll_s: float = 0.05):
        self.handler = handler
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved = None
        self.processed = threading.Event()   # set after each chunk of keys was handled (tests wait on it)
        self.error: BaseException | None = None

    def __enter__(self) -> "KeyReader":
        if os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            try:
                tty.setcbreak(self.fd)
            except BaseException:
                self.restore()
                raise
        self._thread = threading.Thread(target=self._run, name="stimscript-keys", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import select

        try:
            while not self._stop.is_set():
                r, _, _ = select.select([self.fd], [], [], self.poll_s)
                if not r:
                    continue
                data = os.read(self.fd, 64)
                if not data:
                    break
                self.handler.feed(data)
                self.processed.set()
        except (OSError, ValueError) as exc:  # fd closed under us
            self.error = exc

    def restore(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def __exit__(self, *exc) -> None:
        self._stop.set()
        try:
            if self._thread is not None:
                self._thread.join(timeout=1.0)
        finally:
            self.restore()


@contextmanager
def interrupt_signals(handler: KeyHandler, signals=("SIGINT", "SIGTERM", "SIGHUP")):
    """Route SIGINT (Ctrl-C), SIGTERM and SIGHUP to ``handler.interrupt()`` while the session runs.

    First signal: stop with a ramp-down; second: emergency stop; a third Ctrl-C raises KeyboardInterrupt
    (the runtime then switches the output off and marks the record ``interrupted``). Only in the main
    thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    # A signal handler runs between two bytecodes of the main thread, which may hold a lock at that
    # moment (inside Event.wait, a driver call, ...). Taking any lock from the handler could deadlock,
    # so the handler only puts the signal on a SimpleQueue (reentrant, safe in signal handlers) and a
    # helper thread does the work.
    pending: queue.SimpleQueue = queue.SimpleQueue()

    ctl = handler.ctl

    def worker() -> None:
        while pending.get() is not None:
            try:
                handler.interrupt()
            finally:
                ctl._signals_handled += 1

    def on_signal(signum, frame):
        if handler.interrupts + (ctl._signals_posted - ctl._signals_handled) >= 2 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        ctl._signals_posted += 1
        pending.put(signum)

    thread = threading.Thread(target=worker, name="stimscript-signals", daemon=True)
    thread.start()
    try:
        for name in signals:
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, on_signal)
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)
        pending.put(None)
        thread.join(timeout=5)


# ---- without a terminal ------------------------------------------------------------------------------
class PlainReporter:
    """``on_event`` callback for a pipe or CI: state changes, faults and a progress line every 10 %."""

    def __init__(self, info: SessionInfo, echo=None, steps: int = 10):
        self.info = info
        self.echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
        self.steps = steps
        self._next = 1
        self._underruns = 0

    def on_event(self, ev: Event) -> None:
        p = ev.progress
        t = f"[{mmss(p.elapsed_us)}]"
        if ev.kind == "started":
            self.echo(f"{t} started: {self.info.title} (session {self.info.session}, week {self.info.week}), "
                      f"{mmss(self.info.duration_us)} on {self.info.device or 'the device'}")
        elif ev.kind == "progress":
            total = max(1, self.info.duration_us)
            if p.elapsed_us * self.steps >= self._next * total and p.state == "running":
                while self._next * total <= p.elapsed_us * self.steps:
                    self._next += 1
                amps = ", ".join(f"{ma(v)}" for v in p.intensity_ua.values())
                self.echo(f"{t} {100 * p.elapsed_us // total:3d} %  remaining {mmss(p.remaining_us)}  "
                          f"{p.segment}  delivered {sum(p.delivered.values())} pulses"
                          + (f"  intensity {amps}" if amps else ""))
        elif ev.kind in ("paused", "resumed", "stopping", "fault"):
            self.echo(f"{t} {ev.kind}" + (f": {ev.detail}" if ev.detail else ""))
        elif ev.kind == "underrun" and not self._underruns:
            self._underruns += 1
            self.echo(f"{t} underrun: {ev.detail}")
        elif ev.kind == "ended":
            self.echo(f"{t} ended: {ev.detail or 'completed'}")


# ---- the summary -------------------------------------------------------------------------------------
def summary(record, info: SessionInfo | None = None) -> str:
    """The end-of-session text: end reason, per-channel delivered/peak, warnings, record id and database."""
    names = {r.number: r for r in (info.channels if info else ())}
    lines = [f"Session summary: {record.title or '(untitled)'} (session {record.session}, week {record.week})",
             f"  end reason   {record.end_reason} — {END_TEXT.get(record.end_reason, '')}".rstrip(" —"),
             *([f"               {record.end_detail}"] if getattr(record, "end_detail", "") else []),
             f"  elapsed      {mmss(record.elapsed_us)} of {mmss(record.duration_us)}",
             f"  device       {record.device}{' ' + record.device_serial if record.device_serial else ''}"]
    if record.patient_id:
        lines.append(f"  patient      {record.patient_id}")
    if record.params:
        lines.append("  params       " + ", ".join(f"{k} = {v}" for k, v in record.params.items()))
    for name, ua in (info.final_intensity_ua if info else {}).items():
        lines.append(f"  at the end   {name} = {ua / 1000:g} mA" + (
            "" if str(record.params.get(name, "")).replace(" ", "") == f"{ua / 1000:g}mA" else " (changed during the session)"))
    lines.append(f"  delivered    {record.total_delivered} pulses")
    for ch in sorted(set(record.delivered) | set(record.peak_ua)):
        row = names.get(ch)
        label = f"channel {ch}" + (f" {row.name}" if row and row.name else "") + (f" ({row.site})" if row and row.site else "")
        lines.append(f"    {label}: {record.delivered.get(ch, 0)} pulses, peak {record.peak_ua.get(ch, 0) / 1000:g} mA")
    peak = max(record.peak_ua.values(), default=0)
    lines.append(f"  peak         {peak / 1000:g} mA")
    lines.append(f"  underruns    {record.underruns}")
    for f in record.faults:
        lines.append(f"  fault        {f}")
    if record.warnings:
        for wmsg in record.warnings:
            lines.append(f"  warning      {wmsg}")
    else:
        lines.append("  warnings     none")
    storage = getattr(record, "storage", "")
    if storage == "journal":
        lines.append(f"  record       NOT in the database {record.db_path} ({record.storage_error})")
        lines.append(f"               kept in {record.journal_path}; merged the next time the database opens")
    elif storage == "memory":
        import dataclasses
        import json

        data = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
                if f.name not in ("acknowledged", "notes")}
        lines.append(f"  record       NOT SAVED: {record.storage_error}")
        lines.append("               keep this copy of it:")
        lines.append("  " + json.dumps(data, default=str, ensure_ascii=False))
    elif record.id is not None:
        lines.append(f"  record       #{record.id} in {record.db_path}")
        lines.append(f"               add a note: stimscript note {record.id} --rpe N --text \"...\"")
    else:
        lines.append("  record       not saved (--no-record)")
    return "\n".join(lines)


def _stdin_is_a_terminal(fd: int | None = None) -> bool:
    try:
        return os.isatty(sys.stdin.fileno() if fd is None else fd)
    except (OSError, ValueError, AttributeError):   # no real stdin (a test runner, a service)
        return False


# ---- putting it together ------------------------------------------------------------------------------
def run_session(schedule, *, device="loopback", realtime: bool = False, db=None, record: bool = True,
                patient_id: str | None = None, param_ranges: dict | None = None, params: dict | None = None,
                live: bool | None = None, keys: bool | None = None, controller: SessionController | None = None,
                console=None, echo=None, key_fd: int | None = None, **run_kw):
    """Run ``schedule`` with the live display (``live``: default when stdout is a terminal) and keyboard
    controls (``keys``: default when live, in real time and stdin is a terminal), or plainly.
    -> (SessionRecord, SessionInfo)."""
    from .runtime import run as runtime_run

    ctl = controller or SessionController()
    dev_name = device if isinstance(device, str) else getattr(device, "name", type(device).__name__)
    info = SessionInfo.from_schedule(schedule, dev_name, realtime, param_ranges, patient_id)
    if live is None:
        live = sys.stdout.isatty()
    if keys is None:
        keys = bool(live and realtime and _stdin_is_a_terminal(key_fd))
    kw = dict(device=device, realtime=realtime, controller=ctl, db=db, record=record, patient_id=patient_id,
              param_ranges=param_ranges, params=params)
    kw.update(run_kw)
    if not live:
        rep = PlainReporter(info, echo=echo)
        handler = KeyHandler(ctl)
        with interrupt_signals(handler):
            rec = runtime_run(schedule, on_event=rep.on_event, **kw)
        return rec, replace(info, final_intensity_ua=dict(ctl.progress.intensity_ua))

    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    state = LiveState(info, keys=keys)
    handler = KeyHandler(ctl, state)
    kw.setdefault("progress_interval_ms", 250 if realtime else 1000)
    with Live(console=console, get_renderable=lambda: render(state.view()), refresh_per_second=8 if realtime else 4,
              transient=False, redirect_stderr=False):
        with interrupt_signals(handler):
            if keys:
                with KeyReader(handler, key_fd):
                    rec = runtime_run(schedule, on_event=state.on_event, **kw)
            else:
                rec = runtime_run(schedule, on_event=state.on_event, **kw)
    return rec, replace(info, final_intensity_ua=dict(ctl.progress.intensity_ua))
