"""The live display of a running session: what it shows (:class:`SessionInfo`, :class:`View`), where each
channel is in its cycle (:func:`where`), the picture (:func:`render`, a pure function tested by rendering to
text) and :class:`LiveState`, the ``on_event`` callback that keeps what the display needs.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from ..formatting import duration, ma
from ..runtime.controls import Event, Progress
from .keys import KEY_LEGEND

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
        from ..runtime.intensity import _to_ua   # the runtime's own reading of a current (same ranges, same µA)

        rows = []
        for c in schedule.channels:
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
        return cls(title=schedule.title or "", session=schedule.session,
                   week=schedule.week, duration_us=schedule.duration_us, device=str(device),
                   realtime=realtime, channels=tuple(sorted(rows, key=lambda r: r.number)), ranges=ranges,
                   patient_id=patient_id, trains=tuple(schedule.trains),
                   segments=tuple(schedule.segments))


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


def countdown(us: int | None) -> str:
    """A countdown, rounded up to the second ('00:01' until the moment it ends), as a coach counts."""
    return mmss(-(-max(0, int(us or 0)) // 1_000_000) * 1_000_000)


def mmss(us: int) -> str:
    """The display's clock: '05:03', '1:02:03' (whole seconds, rounded down)."""
    return duration(us, pad_minutes=True)


@dataclass(frozen=True)
class Where:
    """Where a channel is in its cycle at one schedule time (for coaching the patient)."""

    block: str = ""            # the segment label ("set 2/3 · repeat 10 × contraction")
    contraction: int = 0       # 1-based number of the contraction within the block (0: none)
    contractions: int = 0
    phase: str = ""            # "ramp up" | "hold" | "ramp down" | "rest" | "waiting" (starts later) | "" (none)
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
    # not started yet in this block (a line with `after`): the countdown to its first contraction
    later = [tr for tr in info.trains if (channel is None or tr.channel == channel) and lo <= tr.start_us < hi
             and tr.start_us > t_us and tr.cycle_us > 0]
    if later:
        tr = min(later, key=lambda tr: tr.start_us)
        total = -(-(min(tr.end_us, hi) - tr.start_us) // tr.cycle_us)
        return Where(label, 0, int(total), "waiting", int(tr.start_us - t_us), int(tr.start_us - t_us))
    return Where(label)


def cycle_groups(info: SessionInfo, t_us: int) -> list[tuple[tuple[str, ...], Where]]:
    """Where each channel is in its cycle at ``t_us``, channels in the same place grouped (they share a cycle):
    [(channel names, Where)], in channel order. One group when every channel moves together (or only one
    channel runs); several when channels alternate (reciprocal quadriceps/hamstrings) or run other cycles.
    Channels with no train anywhere in the session are left out."""
    running = {tr.channel for tr in info.trains}
    out: dict = {}
    for row in info.channels:
        if row.number not in running:
            continue
        w = where(info, t_us, row.number)
        key = (w.contraction, w.contractions, w.phase, w.phase_left_us, w.next_in_us)
        out.setdefault(key, ([], w))[0].append(row.name or f"channel {row.number}")
    groups = [(tuple(names), w) for names, w in out.values()]
    if len(groups) > 1:   # channels idle in this block only matter when something else runs
        active = [g for g in groups if g[1].phase]
        idle = [g for g in groups if not g[1].phase]
        groups = active + idle
    return groups or [((), where(info, t_us))]


def render(view: View):
    """The live display for one :class:`View` (a pure function: same view, same picture)."""
    from rich.console import Group, RenderableType
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
    groups = cycle_groups(info, p.elapsed_us)
    named = len(groups) > 1
    for line_no, (names, w) in enumerate(groups):
        cyc = Text()
        if named:
            cyc.append(", ".join(names) + ": ", style="bold")
        if not w.phase:
            cyc.append("no output in this block", style="dim")
        elif w.phase == "waiting":
            cyc.append(f"first contraction in {countdown(w.next_in_us)}", style="bold")
        else:
            if w.contractions:
                cyc.append(f"contraction {w.contraction}/{w.contractions}", style="bold")
                cyc.append(" · ")
            cyc.append(w.phase, style="bold green" if w.phase in ("hold", "on") else "bold")
            if w.phase == "rest":
                cyc.append(f" · next contraction in {countdown(w.next_in_us)}" if w.next_in_us is not None
                           else " · last contraction of this block done")
            else:
                cyc.append(f" · {countdown(w.phase_left_us)} left")
        lines.add_row("now" if line_no == 0 else "", cyc)
    lines.add_row("paused", Text(mmss(p.paused_us), style="bold yellow" if status in ("PAUSED", "PAUSING") else ""))
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

    parts: list[RenderableType] = [head, top, bar, lines, Text(""), chans]
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
