"""Session markers as they happen, from the device's own reports: what a Lab Streaming Layer stream carries.

:class:`MarkerBuilder` is a session observer without any I/O: it turns the device's acknowledgements and
status reports into markers stamped with **device time** (µs on the stimulator's clock), each a dict:

================== ==================================================================================
``session_start``  the START epoch (session time 0)
``block_start``    a protocol block began (``block``: its label), once the device has played up to it
``contraction_start`` / ``contraction_end``  per channel: the first delivered pulse of a contraction / the
                   end of its last delivered pulse (onset + the pulse shape's duration) — the rule of
                   stimscript/research/contractions.py, so markers, BIDS events and NWB intervals agree
``pulse``          every delivered pulse (optional: ``pulses=True``), with its delivered amplitude
``pause`` / ``resume``  the pause ramp began (or the output went off without one) / output back on
``stop``           the stop ramp began (or the output went off without one)
``emergency_stop`` the output went off at once
``fault``          the device switched the output off itself
``session_end``    the device's final report
================== ==================================================================================

A contraction end is known when its last scheduled pulse is acknowledged, or when the output goes off
(pause, stop, fault); a contraction cut by a pause ends at its last delivered pulse and starts again after
the resume. Markers come out in the order they become known, stamped with when they happened.
"""
from __future__ import annotations

import bisect

import numpy as np

from ..drivers import events as ev
from ..runtime.devicelog import SessionObserver
from .contractions import TrainIndex

_OFF = (ev.PAUSED, ev.STOPPED, ev.ESTOPPED, ev.FAULTED, ev.IDLE)


class MarkerBuilder(SessionObserver):
    """Collects ``(device_t_us, marker dict)`` in :attr:`pending`; a publisher drains it (``take()``)."""

    def __init__(self, schedule, pulses: bool = False):
        self.schedule = schedule
        self.pulses = pulses
        self.pending: list[tuple[int, dict]] = []
        self.count = 0
        self.epoch = 0
        self._index = TrainIndex(schedule)
        self._names = {c.number: c.name for c in schedule.channels}
        # per channel: scheduled times and whether each pulse is the last of its contraction
        self._last: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        p = schedule.pulses
        for ch in np.unique(p["channel"]).tolist() if len(p) else []:
            t = p["t_us"][p["channel"] == ch].astype(np.int64)
            train, cycle = self._index.locate(np.full(len(t), ch, dtype=np.int64), t)
            last = np.ones(len(t), dtype=bool)
            last[:-1] = (train[1:] != train[:-1]) | (cycle[1:] != cycle[:-1])
            self._last[int(ch)] = (t, last)
        self._sent_first: list[int] = []      # index ranges sent (first index, count, offset to device time)
        self._sent_n: list[int] = []
        self._sent_off: list[int] = []
        self._open: dict[int, list] = {}      # channel -> [key, last_t, last_shape_us]
        self._period = 0
        self._state = ev.RUNNING
        self._offset = 0
        self._blocks = sorted(((s.start_us, s.label) for s in schedule.segments), key=lambda b: b[0])
        self._blocks_next = 0                 # first block not yet queued for a marker
        self._block_wait: list[tuple[int, str, int]] = []   # (device time, label, schedule time)
        self._ended = False

    def take(self) -> list[tuple[int, dict]]:
        out, self.pending = self.pending, []
        return out

    def _add(self, t_us: int, event: str, **fields) -> None:
        m = {"event": event, "session_us": int(t_us) - self.epoch}
        m.update({k: v for k, v in fields.items() if v is not None})
        self.pending.append((int(t_us), m))
        self.count += 1

    # ---- observer hooks ------------------------------------------------------------------------------
    def on_start(self, dispatcher) -> None:
        self.epoch = int(dispatcher.epoch)
        self._offset = int(dispatcher.offset)
        self._add(self.epoch, "session_start", title=getattr(self.schedule, "title", "") or None)

    def on_sent(self, dispatcher, first_index: int, sched_pulses: np.ndarray, offset: int) -> None:
        if len(sched_pulses) == 0:
            return
        self._sent_first.append(int(first_index))
        self._sent_n.append(len(sched_pulses))
        self._sent_off.append(int(offset))
        self._offset = int(offset)
        end = int(sched_pulses["t_us"][-1])
        while self._blocks_next < len(self._blocks) and self._blocks[self._blocks_next][0] <= end:
            start, label = self._blocks[self._blocks_next]
            self._block_wait.append((start + int(offset), label, start))
            self._blocks_next += 1

    def on_message(self, dispatcher, m) -> None:
        if self._ended:
            return
        if isinstance(m, ev.PulsesDelivered):
            if len(m.records):
                self._pulses(m.records)
            self._blocks_up_to(int(m.device_t_us))
        elif isinstance(m, ev.StatusReport):
            self._status(dispatcher, m)

    def on_end(self, dispatcher, record) -> None:
        if not self._ended:
            self._close_all()
            self._ended = True

    # ---- pulses --------------------------------------------------------------------------------------
    def _offsets(self, index: np.ndarray) -> np.ndarray:
        starts = np.asarray(self._sent_first, dtype=np.int64)
        pos = np.searchsorted(starts, index.astype(np.int64), side="right") - 1
        off = np.asarray(self._sent_off, dtype=np.int64)
        return off[np.maximum(pos, 0)]

    def _pulses(self, r: np.ndarray) -> None:
        t = r["t_us"].astype(np.int64)
        ch = r["channel"].astype(np.int64)
        sched_t = t - self._offsets(r["index"])
        train, cycle = self._index.locate(ch, sched_t)
        shape_us = self._index.shape_us
        shapes = self._shapes_of(ch, sched_t)
        for i in range(len(r)):
            c, ti = int(ch[i]), int(t[i])
            key = (int(train[i]), int(cycle[i]), self._period)
            cur = self._open.get(c)
            dur = int(shape_us[shapes[i]]) if shapes[i] >= 0 else 0
            if cur is None or cur[0] != key:
                if cur is not None:
                    self._close(c)
                self._add(ti, "contraction_start", channel=c, name=self._names.get(c),
                          amplitude_ua=int(r["amplitude_ua"][i]))
                cur = self._open[c] = [key, ti, dur, abs(int(r["amplitude_ua"][i]))]
            cur[1], cur[2] = ti, dur
            cur[3] = max(cur[3], abs(int(r["amplitude_ua"][i])))
            if self.pulses:
                self._add(ti, "pulse", channel=c, name=self._names.get(c), amplitude_ua=int(r["amplitude_ua"][i]))
            if self._is_last(c, int(sched_t[i])):
                self._close(c)
        self._blocks_up_to(int(t[-1]))

    def _shapes_of(self, ch: np.ndarray, sched_t: np.ndarray) -> np.ndarray:
        out = np.full(len(ch), -1, dtype=np.int64)
        p = self.schedule.pulses
        if not len(p):
            return out
        pos = np.searchsorted(p["t_us"], sched_t, side="left")
        for i in range(len(ch)):   # pulses at one instant on several channels: find this channel's
            j = int(pos[i])
            while j < len(p) and int(p["t_us"][j]) == int(sched_t[i]):
                if int(p["channel"][j]) == int(ch[i]):
                    out[i] = int(p["shape"][j])
                    break
                j += 1
        return out

    def _is_last(self, ch: int, sched_t: int) -> bool:
        if ch not in self._last:
            return False
        t, last = self._last[ch]
        j = int(np.searchsorted(t, sched_t))
        return j < len(t) and int(t[j]) == sched_t and bool(last[j])

    def _close(self, ch: int) -> None:
        cur = self._open.pop(ch, None)
        if cur is not None:
            self._add(cur[1] + cur[2], "contraction_end", channel=ch, name=self._names.get(ch), peak_ua=cur[3])

    def _close_all(self) -> None:
        for ch in sorted(self._open):
            self._close(ch)

    def _blocks_up_to(self, device_t: int) -> None:
        while self._block_wait and self._block_wait[0][0] <= device_t:
            t, label, _ = self._block_wait.pop(0)
            self._add(t, "block_start", block=label)

    # ---- state changes -------------------------------------------------------------------------------
    def _status(self, dispatcher, m) -> None:
        state, t, prev = m.state, int(m.device_t_us), self._state
        if state == prev:
            return
        completed = getattr(dispatcher, "end_reason", None) == "completed"   # the host's stop(0) at the end
        self._state = state
        if state == ev.PAUSING or (state == ev.PAUSED and prev == ev.RUNNING):
            self._add(t, "pause")
        if state == ev.PAUSED:
            self._close_all()
            # the device flushed everything after its ramp end: blocks not reached are queued again when
            # their pulses are sent again
            pause_sched = int(m.ramp_end_us) - self._offset
            self._block_wait = [b for b in self._block_wait if b[2] < pause_sched]
            self._blocks_next = min(self._blocks_next, bisect.bisect_left([b[0] for b in self._blocks], pause_sched))
            self._period += 1
        elif state == ev.RUNNING and prev == ev.PAUSED:
            at = max(t, int(dispatcher.offset) + int(dispatcher.pause_sched))
            self._add(at, "resume")
        elif (state == ev.STOPPING or (state == ev.STOPPED and prev != ev.STOPPING)) and not completed:
            self._add(t, "stop")
        elif state == ev.ESTOPPED:
            self._add(t, "emergency_stop")
        elif state == ev.FAULTED:
            self._add(t, "fault")
        if state in (ev.STOPPED, ev.ESTOPPED, ev.FAULTED, ev.IDLE):
            self._close_all()
            self._block_wait = [b for b in self._block_wait if b[0] <= t]
            self._blocks_up_to(t)
            self._block_wait = []
            self._add(t, "session_end", reason="completed" if completed else state)
            self._ended = True

