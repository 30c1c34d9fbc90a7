"""Where device time sits on the host clock, with a bound that holds: from the link's own round trips.

Every frame a wire-protocol device sends carries the seq of the last host frame it received (``ack``), and
ACK and STATUS carry the device time at which the device wrote them. So a report stamped ``dev_t`` was
written after the device received host frame ``ack`` (sent at host time ``h_send``) and before the host
read it (``h_recv``)::

    h_send <= host time of dev_t <= h_recv      =>   offset = host - device  in  [h_send - dev_t, h_recv - dev_t]

Every such interval holds whatever the link delay was (a slow or retransmitted frame only widens it).
Intervals from many reports are intersected — the latest ones, and the two that bound the offset best
over the whole session (a tight round trip, e.g. a STATUS answering a request, stays useful long after
the routine ACKs that followed it) — each widened by the clock drift allowed between its time and the
time asked about (``drift_ppm``: 0 for an emulator that follows the host clock, 100 ppm for a
crystal-driven device by default), so the estimate tightens as the session goes on and a drifting device
clock is still covered. :meth:`TimeSync.estimate` returns the midpoint and the half-width: the offset's
uncertainty, which is what Lab Streaming Layer markers and the record report.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: assumed bound on the device clock's rate error against the host clock, unless the device says
DEFAULT_DRIFT_PPM = 100


@dataclass(frozen=True)
class ClockMapping:
    """host_us = device_us + offset_us, true within ± uncertainty_us (at device time ``at_device_us``)."""

    offset_us: float
    uncertainty_us: float
    at_device_us: int
    samples: int


class TimeSync:
    """Device-to-host clock offset from (dev_t, h_send, h_recv) samples; keeps the ``keep`` latest."""

    def __init__(self, drift_ppm: float = DEFAULT_DRIFT_PPM, keep: int = 512):
        self.drift_ppm = float(drift_ppm)
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=keep)   # (dev_t, lo, hi) of the offset
        self._best_lo: tuple[int, int, int] | None = None   # the largest lower bound (drift-adjusted)
        self._best_hi: tuple[int, int, int] | None = None   # the smallest upper bound (drift-adjusted)
        self.total = 0

    def add(self, device_us: int, host_sent_us: int, host_received_us: int) -> None:
        """A report stamped ``device_us``, written after the host sent at ``host_sent_us`` and read at
        ``host_received_us`` (host clock, µs)."""
        if host_received_us < host_sent_us:
            return
        d = int(device_us)
        s = (d, int(host_sent_us) - d, int(host_received_us) - d)
        self._samples.append(s)
        self.total += 1
        # for any later time t, lo - k(t - t_i) is largest for the largest lo + k t_i (hi likewise)
        lo, hi = self._best_lo, self._best_hi
        k = self.drift_ppm * 1e-6
        if k == 0:      # no drift (an emulator on the host's clock): the bounds compare as they are
            if lo is None or s[1] > lo[1]:
                self._best_lo = s
            if hi is None or s[2] < hi[2]:
                self._best_hi = s
            return
        if lo is None or s[1] + k * s[0] > lo[1] + k * lo[0]:
            self._best_lo = s
        if hi is None or s[2] - k * s[0] < hi[2] - k * hi[0]:
            self._best_hi = s

    def __bool__(self) -> bool:
        return bool(self._samples)

    def estimate(self, at_device_us: int | None = None) -> ClockMapping | None:
        """The offset at ``at_device_us`` (default: the latest sample's time), or None without samples."""
        if not self._samples:
            return None
        t = self._samples[-1][0] if at_device_us is None else int(at_device_us)
        k = self.drift_ppm * 1e-6
        samples = [*self._samples, *(x for x in (self._best_lo, self._best_hi) if x is not None)]
        lo = max(s[1] - k * abs(t - s[0]) for s in samples)
        hi = min(s[2] + k * abs(t - s[0]) for s in samples)
        if lo > hi:
            # inconsistent within the drift bound (the device clock jumped or drifts faster): trust the
            # narrowest recent interval alone
            s = min(self._samples, key=lambda s: (s[2] - s[1]) + 2 * k * abs(t - s[0]))
            lo, hi = s[1] - k * abs(t - s[0]), s[2] + k * abs(t - s[0])
        return ClockMapping((lo + hi) / 2, (hi - lo) / 2, t, len(self._samples))
