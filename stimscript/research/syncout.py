"""Sync out: the device raises a TTL edge at the session start, at every contraction, or at every pulse.

EMG and force labs feed this trigger into their acquisition system, so the recording and the stimulation
share one time zero. The edges are raised by the device itself at device times the host asks for (the
wire protocol's sync-out extension, docs/wire-protocol.md), so host jitter never moves them:

* ``start``        one edge at the session start (the START epoch);
* ``contraction``  an edge at the first scheduled pulse of every contraction (every cycle's on-phase of
                   every channel; channels starting together share one edge);
* ``pulse``        an edge at every scheduled pulse time (pulses at the same instant share one edge).

An edge is raised only when the output is on at its time (the rule of a pulse at that time): none while
paused, none after a stop, an emergency stop or a fault. Edges closer than the pulse width to the previous
edge are not asked for. The device reports every edge it raised; the record keeps their count, the first
and last, and the SHA-256 of all of them (``device_log["extra"]["sync_out"]``), which ``stimscript export``
uses (``--reference ttl``) after rebuilding every edge from the schedule and the device log
(:func:`rebuild_edges`) and checking it against those facts.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..drivers import events as ev
from ..errors import DriverError
from ..runtime.devicelog import SessionObserver

MODES = ("start", "contraction", "pulse")
DEFAULT_WIDTH_US = 1_000


def contraction_onsets(schedule) -> np.ndarray:
    """Schedule times of the first pulse of every contraction (channel, train, cycle), sorted, unique."""
    from .contractions import TrainIndex

    p = schedule.pulses
    if len(p) == 0:
        return np.zeros(0, dtype=np.int64)
    ch = p["channel"].astype(np.int64)
    t = p["t_us"].astype(np.int64)
    train, cycle = TrainIndex(schedule).locate(ch, t)
    order = np.lexsort((np.arange(len(p)), ch))
    k_ch, k_tr, k_cy = ch[order], train[order], cycle[order]
    new = np.ones(len(p), dtype=bool)
    new[1:] = (k_ch[1:] != k_ch[:-1]) | (k_tr[1:] != k_tr[:-1]) | (k_cy[1:] != k_cy[:-1])
    return np.unique(t[order][new])


def planned_edges(schedule, mode: str, width_us: int = DEFAULT_WIDTH_US) -> np.ndarray:
    """Schedule times at which ``mode`` asks for an edge, before pauses (closer than ``width_us`` dropped)."""
    if mode == "start":
        return np.zeros(1, dtype=np.int64)
    t = contraction_onsets(schedule) if mode == "contraction" else np.unique(schedule.pulses["t_us"].astype(np.int64))
    return _spaced(t, width_us, None)


def _spaced(t: np.ndarray, width_us: int, last: int | None) -> np.ndarray:
    """Drop every time closer than ``width_us`` to the previous kept one (``last``: kept before ``t``)."""
    if len(t) == 0:
        return t
    if last is None and (len(t) == 1 or np.diff(t).min() >= width_us):
        return t
    keep, prev = [], last
    for x in t.tolist():
        if prev is None or x - prev >= width_us:
            keep.append(x)
            prev = x
    return np.asarray(keep, dtype=np.int64)


def rebuild_edges(schedule, tl) -> np.ndarray | None:
    """The sync-out edges the device raised (µs after the session start on its clock), recomputed from the
    schedule and the device log (stimscript/research/rebuild.py ``Timeline``) by the device's rule and checked
    against the record (count and SHA-256 of the edges it reported); None when the session ran without sync
    out. Raises RebuildMismatch when they differ (never a silent export)."""
    from .rebuild import RebuildMismatch

    info = (tl.extra or {}).get("sync_out") or {}
    if not info or info.get("unavailable"):
        return None
    planned = planned_edges(schedule, str(info.get("mode")), int(info.get("width_us", DEFAULT_WIDTH_US)))
    out: list[np.ndarray] = []
    raised_sched: set = set()
    for k, per in enumerate(tl.periods):
        lo = int(np.searchsorted(planned, per.from_sched_us, side="left"))
        hi = len(planned) if per.to_sched_us is None else int(np.searchsorted(planned, per.to_sched_us, side="right"))
        sched = planned[lo:hi]
        t = sched + per.offset_us
        keep = t >= per.at_us
        if per.from_sched_us in raised_sched:   # raised at the instant of a 0 ms pause: its pulse is not sent again
            keep &= sched != per.from_sched_us
        if per.end_us is not None:
            # output off at end_us: by a host message (an edge at that instant was raised before it), or at the
            # end of a ramp or by a fault (not raised)
            by_ramp = per.ramp_down_from_us is not None and per.end_state in (ev.PAUSED, ev.STOPPED)
            keep &= (t < per.end_us) if (by_ramp or not per.end_inclusive) else (t <= per.end_us)
        elif tl.acked_through_us is not None and k == len(tl.periods) - 1:
            keep &= t <= int(tl.acked_through_us)
        out.append(t[keep])
        raised_sched.update(sched[keep].tolist()[-2:])   # only the last ones can meet the next period
    edges = (np.concatenate(out) if out else np.zeros(0, dtype=np.int64)) - tl.epoch_us
    raised = int(info.get("raised", -1))
    if len(edges) != raised or hashlib.sha256(edges.astype("<i8").tobytes()).hexdigest() != info.get("sha256"):
        raise RebuildMismatch(f"the sync-out edges cannot be rebuilt exactly from the record: rebuilt {len(edges)} "
                              f"edges, the device reported {raised}"
                              + (" (same count, different times)" if len(edges) == raised else ""))
    return edges


class SyncOut(SessionObserver):
    """A session observer asking the device for sync edges as pulses are queued, and recording the
    edges it raised (``stimscript.run(..., observers=[SyncOut("contraction")])``)."""

    def __init__(self, mode: str, line: int = 1, width_us: int = DEFAULT_WIDTH_US):
        if mode not in MODES:
            raise ValueError(f"sync-out mode {mode!r}: use one of {', '.join(MODES)}")
        self.mode, self.line, self.width_us = mode, int(line), int(width_us)
        self._onsets = np.zeros(0, dtype=np.int64)
        self._last_sent: int | None = None
        self.requested = 0
        self.raised: list[int] = []        # device times of the edges the device reported
        self.raised_total = 0
        self.missed_total = 0
        self._digest = hashlib.sha256()
        self._extra: dict | None = None
        self._epoch = 0
        self.unavailable = ""

    @staticmethod
    def check(driver, line: int = 1) -> None:
        """Raise DriverError unless ``driver`` has sync output ``line`` (call before the session)."""
        n = getattr(driver, "sync_lines", 0)
        if n < line:
            have = f"has {n} sync output(s)" if n else "has no sync output"
            raise DriverError(f"device {getattr(driver, 'model', '') or getattr(driver, 'name', driver)!r} {have}: "
                              f"--sync-out needs output {line}")

    # ---- observer hooks ------------------------------------------------------------------------------
    def on_start(self, dispatcher) -> None:
        drv = dispatcher.driver
        self._epoch = int(dispatcher.epoch)
        self._extra = dispatcher.device_log.extra.setdefault("sync_out", {})
        self._extra.update(mode=self.mode, line=self.line, width_us=self.width_us, requested=0, raised=0,
                           missed=0, first_edge_us=None, last_edge_us=None, sha256=self._digest.hexdigest())
        if getattr(drv, "sync_lines", 0) < self.line:
            self.unavailable = "the device has no such sync output"
            self._extra["unavailable"] = self.unavailable
            return
        if self.mode == "contraction":
            self._onsets = contraction_onsets(dispatcher.schedule)
        elif self.mode == "start":
            self._send(drv, np.array([self._epoch], dtype=np.int64))

    def on_sent(self, dispatcher, first_index: int, sched_pulses: np.ndarray, offset: int) -> None:
        if self.unavailable or self.mode == "start" or len(sched_pulses) == 0:
            return
        t = sched_pulses["t_us"].astype(np.int64)
        if self.mode == "pulse":
            sched = np.unique(t)
        else:
            lo = int(np.searchsorted(self._onsets, t[0], side="left"))
            hi = int(np.searchsorted(self._onsets, t[-1], side="right"))
            cand = self._onsets[lo:hi]
            sched = cand[np.isin(cand, t)]
        if len(sched):
            self._send(dispatcher.driver, sched + int(offset))

    def on_message(self, dispatcher, m) -> None:
        if isinstance(m, ev.SyncEdges) and m.line == self.line:
            t = np.asarray(m.t_us, dtype=np.int64)
            if len(t):
                self.raised.extend(t.tolist())
                self._digest.update((t - self._epoch).astype("<i8").tobytes())
            self.raised_total, self.missed_total = int(m.raised_total), int(m.missed_total)
            self._update()
        elif isinstance(m, ev.StatusReport) and m.state == ev.PAUSED and self._last_sent is not None:
            # the device flushed the edges after its pause ramp: they will be asked for again after the resume
            self._last_sent = min(self._last_sent, int(m.ramp_end_us))

    # ---- helpers -------------------------------------------------------------------------------------
    def _send(self, drv, t: np.ndarray) -> None:
        t = _spaced(t, self.width_us, self._last_sent)
        if len(t) == 0:
            return
        drv.sync_out(self.line, self.width_us, t)
        self._last_sent = int(t[-1])
        self.requested += len(t)
        self._update()

    def _update(self) -> None:
        if self._extra is None:
            return
        self._extra.update(requested=self.requested, raised=len(self.raised), missed=self.missed_total,
                           first_edge_us=(self.raised[0] - self._epoch) if self.raised else None,
                           last_edge_us=(self.raised[-1] - self._epoch) if self.raised else None,
                           sha256=self._digest.hexdigest())

    @property
    def edges_us(self) -> np.ndarray:
        """The raised edges, µs after the session start (device clock)."""
        return np.asarray(self.raised, dtype=np.int64) - self._epoch
