"""The pulses of a running session, on their way to the device: taken in schedule-time order up to a
limit, remembered while the device may still need them, and put back when a pause stops the output.

Pulse buffering is kept apart from the session state machine (runtime/dispatcher.py): the state machine
decides *when* and *how much* to send; a :class:`PulseFeed` knows *which* pulses come next.
"""
from __future__ import annotations

import numpy as np

from ..pulses import PULSE_DTYPE

EMPTY = np.zeros(0, dtype=PULSE_DTYPE)

#: pulses per slice when the schedule is already materialised
SLICE = 65536


class PulseFeed:
    """Unsent pulses of a schedule (schedule time, in order) and the sent ones the device may still need."""

    def __init__(self, schedule):
        self.source = self._pulse_source(schedule)
        self.done = False          # the source has no more blocks (the buffer may still hold some)
        self._set_buf(EMPTY)
        #: (schedule-time pulses, device time of the last one) of every block sent and not yet played
        self.inflight: list[tuple[np.ndarray, int]] = []

    @staticmethod
    def _pulse_source(schedule):
        if "pulses" in getattr(schedule, "__dict__", {}):  # already materialised: stream slices of it
            arr = schedule.pulses
            for i in range(0, len(arr), SLICE):
                yield arr[i:i + SLICE]
        else:
            yield from schedule.blocks()

    def _set_buf(self, arr: np.ndarray) -> None:
        self.buf = arr
        self.buf_t = np.ascontiguousarray(arr["t_us"])
        self.buf_pos = 0

    def _next_block(self) -> bool:
        if self.done:
            return False
        try:
            self._set_buf(next(self.source))
            return True
        except StopIteration:
            self.done = True
            self._set_buf(EMPTY)
            return False

    def take(self, limit_sched: int, max_n: int) -> np.ndarray:
        """Up to ``max_n`` unsent pulses with schedule time < limit_sched (in order)."""
        pos = self.buf_pos
        if pos < len(self.buf_t) and self.buf_t[pos] >= limit_sched:
            return EMPTY     # the next pulse is beyond the limit (a pause between contractions)
        parts = []
        while max_n > 0:
            if self.buf_pos >= len(self.buf):
                if not self._next_block():
                    break
                continue
            t = self.buf_t
            end = len(t) if t[-1] < limit_sched else int(np.searchsorted(t, limit_sched, side="left"))
            end = min(end, self.buf_pos + max_n)
            if end <= self.buf_pos:
                break
            parts.append(self.buf[self.buf_pos:end])
            max_n -= end - self.buf_pos
            self.buf_pos = end
            if self.buf_pos < len(self.buf):
                break
        if not parts:
            return EMPTY
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def exhausted(self) -> bool:
        """Every pulse has been taken."""
        while self.buf_pos >= len(self.buf):
            if not self._next_block():
                return True
        return False

    def sent(self, part: np.ndarray, last_device_us: int) -> None:
        """``part`` (schedule time) went to the device; its last pulse plays at ``last_device_us``."""
        self.inflight.append((part, last_device_us))

    def played_before(self, device_us: int) -> None:
        """The device reported time ``device_us``: forget the blocks it has certainly finished with."""
        inflight = self.inflight
        while inflight and inflight[0][1] < device_us:
            inflight.pop(0)

    def put_back(self, from_sched_us: int, played_at_instant=frozenset()) -> None:
        """A pause flushed the device queue at schedule time ``from_sched_us``: the pulses sent but not
        played, and the ones never sent, are taken again (in order) after the resume. Pulses at that very
        instant on the channels in ``played_at_instant`` were delivered (a 0 ms ramp) and are not sent again."""
        done = list(played_at_instant)
        resend = [p[(p["t_us"] > from_sched_us) | ((p["t_us"] == from_sched_us) & ~np.isin(p["channel"], done))]
                  for p, _ in self.inflight]
        resend.append(self.buf[self.buf_pos:])
        resend = [r for r in resend if len(r)]
        self._set_buf(np.concatenate(resend) if resend else EMPTY)
        self.inflight = []
