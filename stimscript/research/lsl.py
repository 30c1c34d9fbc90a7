"""Lab Streaming Layer: a marker stream of the session, stamped with device times mapped onto the LSL clock.

Needs the optional extra ``stimscript[lsl]`` (pylsl, whose wheel carries liblsl); imported only when used.

The stream (type ``Markers``, irregular rate, one string channel) carries one JSON object per marker
(stimscript/research/markers.py: session, block, contraction start/end per channel, pause/resume, stop,
emergency stop, fault, optionally every pulse). Its timestamp is when the marker happened on the
**stimulator's** clock, mapped onto the LSL clock (``pylsl.local_clock()``):

    lsl_time = (device_us + offset_us) / 1e6 + (local_clock − host monotonic clock)

``offset_us`` comes from drivers/timesync.py: every device report is bracketed by the host frame it
acknowledges and the moment it was read, which bounds the offset whatever the link delay; the bounds of
all reports are intersected (widened by the allowed drift). Each marker carries its own bound
(``"sync_uncertainty_us"``); the stream's metadata (``<clock_sync>``) gives the method, the bound measured
before the session and the drift allowed, and the record keeps the mapping at the session start and the
largest bound of any marker (``device_log["extra"]["lsl"]``). Sessions in virtual time (``--fast``) do
not happen on any real clock: publishing needs real time.
"""
from __future__ import annotations

import json
import time
import uuid

from ..errors import StimscriptError
from ..runtime.devicelog import SessionObserver
from .markers import MarkerBuilder

STREAM_TYPE = "Markers"


class LslUnavailable(StimscriptError):
    """pylsl is not installed, or the device cannot map its clock."""


_QUIET = "[log]\nlevel = -2\n"   # liblsl's own INFO lines off; everything else at liblsl's defaults


def require_pylsl():
    try:
        import pylsl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise LslUnavailable("Lab Streaming Layer needs the optional extra: pip install 'stimscript[lsl]' "
                             f"(pylsl could not be imported: {exc})") from None
    global _configured
    if not _configured:
        _configured = True
        if not _user_config():
            try:
                pylsl.set_config_content(_QUIET)
            except Exception:   # liblsl already running in this process: its configuration stays
                pass
    return pylsl


_configured = False


def _user_config() -> bool:
    """Does liblsl find a configuration file of the user's (LSLAPICFG, ./, ~/lsl_api/, /etc/lsl_api/)?"""
    import os

    candidates = [os.environ.get("LSLAPICFG", ""), "lsl_api.cfg", os.path.expanduser("~/lsl_api/lsl_api.cfg"),
                  "/etc/lsl_api/lsl_api.cfg"]
    return any(c and os.path.isfile(c) for c in candidates)


def lsl_minus_monotonic_s(pylsl, n: int = 7) -> tuple[float, float]:
    """(LSL clock − time.monotonic) in s, and half the spread of the readings (their uncertainty)."""
    diffs = []
    for _ in range(n):
        a = time.monotonic()
        lsl = pylsl.local_clock()
        b = time.monotonic()
        diffs.append((lsl - (a + b) / 2, (b - a) / 2))
    diffs.sort()
    mid, half = diffs[len(diffs) // 2]
    return mid, half


def probe_clock(driver, probes: int = 8, timeout_s: float = 2.0) -> None:
    """Before a session: a few STATUS round trips so the driver's clock mapping is known from the start."""
    from ..drivers import events as ev

    if getattr(driver, "time_sync", None) is None:
        raise LslUnavailable(f"device {getattr(driver, 'name', driver)!r} does not report its clock in a way "
                             "stimscript can map onto the LSL clock (the stimscript wire protocol does)")
    for _ in range(probes):
        driver.request_status()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(isinstance(e, ev.StatusReport) for e in driver.poll()):
                break
            time.sleep(0.0005)


class LslPublisher(SessionObserver):
    """Publish a session's markers on a Lab Streaming Layer outlet (create it before the session so a
    recorder can connect; ``wait_for_consumers`` waits for one)."""

    def __init__(self, schedule, driver, name: str = "stimscript", pulses: bool = False,
                 source_id: str | None = None, probes: int = 8):
        self.pylsl = pylsl = require_pylsl()
        probe_clock(driver, probes)
        self.driver = driver
        self.builder = MarkerBuilder(schedule, pulses=pulses)
        self.lsl_minus_host_s, self.lsl_half_s = lsl_minus_monotonic_s(pylsl)
        self.source_id = source_id or f"stimscript-{driver.serial or 'device'}-{uuid.uuid4().hex[:8]}"
        self.name = name
        est = driver.time_sync.estimate()
        self.drift_ppm = driver.time_sync.drift_ppm
        self.pre_uncertainty_us = est.uncertainty_us + self.lsl_half_s * 1e6
        info = pylsl.StreamInfo(name, STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, self.source_id)
        desc = info.desc()
        desc.append_child_value("manufacturer", "stimscript")
        desc.append_child_value("title", getattr(schedule, "title", "") or "")
        desc.append_child_value("protocol_sha256", getattr(schedule, "sha256", "") or "")
        desc.append_child_value("device", f"{getattr(driver, 'name', '')} {driver.model} {driver.serial}".strip())
        desc.append_child_value("format", "JSON object per marker: event, session_us (device clock), channel, "
                                          "name, amplitude_ua, block, sync_uncertainty_us")
        cs = desc.append_child("clock_sync")
        cs.append_child_value("method", "device timestamps mapped onto local_clock through link round trips "
                                        "(every device report bracketed by the host frame it acknowledges and "
                                        "its arrival; bounds intersected)")
        cs.append_child_value("offset_s", f"{est.offset_us / 1e6 + self.lsl_minus_host_s:.9f}")
        cs.append_child_value("uncertainty_s", f"{self.pre_uncertainty_us / 1e6:.9f}")
        cs.append_child_value("drift_bound_ppm", f"{self.drift_ppm:g}")
        cs.append_child_value("per_marker", "each marker's JSON carries its own bound, sync_uncertainty_us")
        self.outlet = pylsl.StreamOutlet(info)
        self.pushed = 0
        self._next_probe: int | None = None
        self.unavailable = ""
        self.max_uncertainty_us = 0.0
        self._extra: dict | None = None

    def wait_for_consumers(self, timeout_s: float) -> bool:
        return bool(self.outlet.wait_for_consumers(timeout_s)) if timeout_s > 0 else self.outlet.have_consumers()

    # ---- observer hooks ------------------------------------------------------------------------------
    def on_start(self, dispatcher) -> None:
        self._extra = dispatcher.device_log.extra.setdefault("lsl", {})
        if not dispatcher.realtime:
            # virtual time is on no real clock: publish nothing rather than timestamps that mean nothing
            self.unavailable = "a session in virtual time (--fast) has no place on the LSL clock"
            self._extra.update(stream_name=self.name, source_id=self.source_id, unavailable=self.unavailable)
            return
        self.builder.on_start(dispatcher)
        est = self.driver.time_sync.estimate(dispatcher.epoch)
        self._extra.update(stream_name=self.name, source_id=self.source_id,
                           session_start_lsl_s=self._lsl(dispatcher.epoch, est),
                           uncertainty_s=(est.uncertainty_us / 1e6) + self.lsl_half_s,
                           drift_bound_ppm=self.drift_ppm, markers=0, max_marker_uncertainty_s=0.0)
        self._push()

    def on_sent(self, dispatcher, first_index, sched_pulses, offset) -> None:
        if self.unavailable:
            return
        self.builder.on_sent(dispatcher, first_index, sched_pulses, offset)

    #: during the session a STATUS round trip is asked for this often (host µs): its answer is written the
    #: moment the request arrives, so it bounds the clock offset far better than the routine ACKs
    PROBE_EVERY_US = 1_000_000

    def on_message(self, dispatcher, m) -> None:
        if self.unavailable:
            return
        now = dispatcher.clock.now_us()
        if self._next_probe is None or now >= self._next_probe:
            self._next_probe = now + self.PROBE_EVERY_US
            if dispatcher.end_reason is None:
                self.driver.request_status()
        self.builder.on_message(dispatcher, m)
        if self.builder.pending:
            self._push()

    def on_end(self, dispatcher, record) -> None:
        if self.unavailable:
            return
        self.builder.on_end(dispatcher, record)
        self._push()

    # ---- pushing -------------------------------------------------------------------------------------
    def _lsl(self, device_us: int, est) -> float:
        return (device_us + est.offset_us) / 1e6 + self.lsl_minus_host_s

    def _push(self) -> None:
        ts = self.driver.time_sync
        for t, marker in self.builder.take():
            est = ts.estimate(t)
            u = est.uncertainty_us + self.lsl_half_s * 1e6
            marker["sync_uncertainty_us"] = round(u, 3)
            self.outlet.push_sample([json.dumps(marker, separators=(",", ":"))], self._lsl(t, est))
            self.pushed += 1
            self.max_uncertainty_us = max(self.max_uncertainty_us, u)
        if self._extra is not None:
            self._extra.update(markers=self.pushed, max_marker_uncertainty_s=self.max_uncertainty_us / 1e6)
