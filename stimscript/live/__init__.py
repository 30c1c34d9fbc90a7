"""The clinician's front end for a running session: a live display (rich) and keyboard controls.

Everything here drives the runtime only through its public seams, so another front end (a GUI, a web
page, a foot switch) can do the same. Three modules, one job each:

* :mod:`.display` — what the screen shows: :class:`SessionInfo`, :class:`View`, :func:`where` (the cycle
  phase of each channel), :func:`render` (a pure function) and :class:`LiveState` (the ``on_event``
  callback that keeps what the display needs);
* :mod:`.keys` — keys and signals to :class:`~stimscript.runtime.SessionController` calls
  (:class:`KeyHandler`, :class:`KeyReader`, :func:`interrupt_signals`);
* :mod:`.session` — :func:`run_session` for ``stimscript run``, :class:`PlainReporter` (no terminal),
  :func:`summary` (the end-of-session text) and the exit codes.
"""
from __future__ import annotations

from .display import (LIVE_STATES, STATUS_STYLE, ChannelRow, LiveState, SessionInfo, View, Where, cycle_groups, ma,
                      mmss, render, render_text, status_label, where)
from .keys import KEY_HELP, KEY_LEGEND, KeyHandler, KeyReader, interrupt_signals
from ..recordview import END_TEXT
from .session import (EXIT_ABNORMAL, EXIT_DEGRADED, EXIT_OK, EXIT_RECORD, PlainReporter, exit_code,
                      run_session, summary)

__all__ = ["ChannelRow", "END_TEXT", "EXIT_ABNORMAL", "EXIT_DEGRADED", "EXIT_OK", "EXIT_RECORD", "KEY_HELP",
           "KEY_LEGEND", "KeyHandler", "KeyReader", "LIVE_STATES", "LiveState", "PlainReporter", "STATUS_STYLE",
           "SessionInfo", "View", "Where", "cycle_groups", "exit_code", "interrupt_signals", "ma", "mmss", "render", "render_text",
           "run_session", "status_label", "summary", "where"]
