"""Keys and signals -> :class:`~stimscript.runtime.SessionController` calls.

* :class:`KeyHandler` maps keys to controller calls (``1``-``8``/``a`` select channels, ``+``/``-`` intensity,
  space pause/resume, ``s``/``q``/Esc stop, ``e`` emergency stop) and implements the Ctrl-C rule: the first
  interrupt stops with a ramp-down, the second is an emergency stop.
* :class:`KeyReader` reads keys without blocking from a thread (terminal in cbreak mode on POSIX, restored
  on every exit path); :func:`interrupt_signals` routes SIGINT/SIGTERM/SIGHUP to the handler.
"""
from __future__ import annotations

import os
import queue
import re
import signal
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..runtime.controls import SessionController

if TYPE_CHECKING:
    from .display import LiveState

KEY_LEGEND = (("1-8", "channel"), ("a", "all"), ("+/-", "1 mA"), ("space", "pause/resume"),
              ("s/q/Esc", "stop"), ("e", "EMERGENCY STOP"), ("Ctrl-C", "stop, 2×: e-stop"))
KEY_HELP = ("keys: 1-8 select a channel, a all channels, + / - raise / lower the selected ones by 1 mA, "
            "space pause/resume, s q Esc stop (ramped), e EMERGENCY STOP")

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
        self.actions: list[str | None] = []   # each key's action (None: the key changed nothing)
        self._lock = threading.Lock()

    def _note(self, msg: str) -> None:
        if self.state is not None:
            self.state.note(msg)

    def feed(self, data) -> list[str]:
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        done = []
        pos = 0
        key: str | None
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
        act: str | None
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
        self._saved: list | None = None   # the terminal's attributes before cbreak (termios.tcgetattr)
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
