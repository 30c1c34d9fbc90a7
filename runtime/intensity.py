"""Live intensity per output channel: what the clinician asks for, what is sent to the device's per-channel
scale registers (moved at the slew limit) and what the device acknowledged (what the record keeps).

The session state machine (runtime/dispatcher.py) owns one :class:`LiveIntensity` and feeds it the controls
and the device's status reports; nothing here talks to a device.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import StimscriptError
from .controls import SessionController
from .records import SessionRecord

SCALE_ONE = 1_000_000          # live intensity scales are whole ppm (exact in records)
MAX_SCALE_PPM = 4_000_000      # the Driver contract: 0 <= factor <= 4


def _to_ua(value) -> int:
    """µA from an int, a Quantity, or text like "45 mA"."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float):
        return int(round(value))
    if isinstance(value, str):
        from ..units import parse_quantity

        value = parse_quantity(value)
    if hasattr(value, "to_ua"):
        return int(value.to_ua())
    raise TypeError(f"cannot read a current from {value!r}")


class LiveIntensity:
    """Live intensity per output channel, applied through the device's per-channel scale registers.

    Every channel with an amplitude has a *nominal* amplitude (µA: what it was compiled with, the full
    amplitude of its envelope), a *target* (what the clinician asked for), an *applied* value (moved toward
    the target at the slew limit, sent as scale = applied / nominal) and an *acknowledged* value (the scale
    the device reported back; this is what the record's event log and ``channel_ua`` hold).

    Ranges: a channel can always be lowered to 0 mA (a patient in pain must not have to stop; going below
    the minimum of the param it follows is logged as a deviation). It can be raised up to the top of its
    reachable range: ``channel_ranges`` when given (the checked envelope of the channel's delivered
    pulses), else the top of its param's range mapped onto the channel (``80% intensity`` reaches 80 % of
    the top), else its compiled amplitude (an amplitude the checker did not vary cannot be raised) — and
    never beyond the device's maximum for the channel's largest pulse.

    Selection: a channel (``channel=`` number, or several), a group (``param=``: the channels that follow
    that param move together, proportionally), or everything (neither).
    """

    def __init__(self, schedule, profile, param_ranges: dict | None, controller: SessionController,
                 channel_ranges: dict | None = None):
        self.ctl = controller
        peak: dict[int, int] = {}
        for tr in schedule.trains:
            peak[tr.channel] = max(peak.get(tr.channel, 0), -(-tr.amp_num // tr.amp_den))
        ranges = dict(getattr(schedule, "param_ranges", None) or {})
        ranges.update(param_ranges or {})
        params = getattr(schedule, "params", None) or {}
        self.names: dict[int, str] = {}
        self.param_of: dict[int, str | None] = {}
        self.nominal: dict[int, int] = {}
        self.hi: dict[int, int] = {}
        self.minimum: dict[int, int] = {}        # the param's minimum on this channel (below: a deviation)
        self.param_value: dict[str, int] = {}    # param -> its compiled value (µA)
        infos = {c.number: c for c in getattr(schedule, "channels", ()) or ()}
        for ch in sorted(set(peak) | set(infos)):
            info = infos.get(ch)
            nominal = (info.amplitude_ua if info is not None and info.amplitude_ua else 0) or peak.get(ch, 0)
            if nominal <= 0:
                continue
            self.nominal[ch] = nominal
            self.names[ch] = (info.name if info is not None and info.name else "") or f"channel {ch}"
            name = info.param if info is not None else None
            self.param_of[ch] = name
            hi = nominal
            value = None
            if name:
                pv = params.get(name)
                try:
                    value = _to_ua(pv) if pv is not None else None
                except (TypeError, ValueError, StimscriptError):
                    value = None
                if value:
                    self.param_value.setdefault(name, value)
                    if name in ranges:
                        r: Any = getattr(ranges[name], "range", ranges[name])
                        lo_p, hi_p = _to_ua(r[0]), _to_ua(r[1])
                        hi = nominal * hi_p // value
                        if lo_p > 0:
                            self.minimum[ch] = -(-nominal * lo_p // value)
            if channel_ranges and ch in channel_ranges:
                r = channel_ranges[ch]
                hi = _to_ua(getattr(r, "range", r)[1])
            p = peak.get(ch, 0)
            if p > 0:   # never beyond what the device can deliver for this channel's largest pulse
                hi = min(hi, nominal * profile.max_current_ua // p)
            self.hi[ch] = max(0, hi)
        self._apply_live(getattr(schedule, "live", None) or {}, param_ranges or {}, channel_ranges or {}, peak,
                         profile)
        self.groups: dict[str, list[int]] = {}
        for ch, name in self.param_of.items():
            if name and name in self.param_value:
                self.groups.setdefault(name, []).append(ch)
        self.value = dict(self.nominal)     # applied (sent) µA
        self.target = dict(self.nominal)    # requested µA
        self.acked = dict(self.nominal)     # acknowledged by the device (µA)
        self.acked_ppm = {ch: SCALE_ONE for ch in self.nominal}
        self.sent_ppm = dict(self.acked_ppm)
        self.reports_scale: bool | None = None   # does the device report its scale registers?
        self._param_memo: dict[tuple, dict[str, int]] = {}

    def _apply_live(self, live: dict, param_ranges: dict, channel_ranges: dict, peak: dict, profile) -> None:
        """The compiler's live envelope, when the schedule carries one: which channels follow which param
        proportionally (only those can be raised with it) and the range checked on the delivered pulses."""
        adjustable = {name: lp for name, lp in live.items() if getattr(lp, "adjustable", False)}
        if not live:
            return
        for ch in self.nominal:
            if ch not in channel_ranges:
                self.param_of[ch] = None
                self.hi[ch] = min(self.hi[ch], self.nominal[ch])
                self.minimum.pop(ch, None)
        for name, lp in adjustable.items():
            value = lp.value_ua
            if value <= 0:
                continue
            self.param_value[name] = value
            hi_p = lp.high.to_ua()
            if name in param_ranges:
                r = getattr(param_ranges[name], "range", param_ranges[name])
                hi_p = min(hi_p, _to_ua(r[1]))
            lo_p = lp.low.to_ua()
            for ch in lp.channels:
                if ch not in self.nominal or ch in channel_ranges:
                    continue
                self.param_of[ch] = name
                hi = self.nominal[ch] * hi_p // value
                p = peak.get(ch, 0)
                if p > 0:
                    hi = min(hi, self.nominal[ch] * profile.max_current_ua // p)
                self.hi[ch] = hi
                if lo_p > 0:
                    self.minimum[ch] = -(-self.nominal[ch] * lo_p // value)

    # ---- selection -------------------------------------------------------------------------------
    def _channels(self, param, channels) -> list[int]:
        if channels is not None:
            chans = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
            out = []
            for ch in chans:
                if int(ch) not in self.nominal:
                    raise StimscriptError(f"channel {ch} has no adjustable amplitude (channels: "
                                          f"{', '.join(str(c) for c in self.nominal) or 'none'})")
                out.append(int(ch))
            return out
        if param is not None:
            if param not in self.groups:
                raise StimscriptError(f"no channel is driven by a param named {param!r} "
                                      f"(params: {', '.join(self.groups) or 'none'})")
            return list(self.groups[param])
        return list(self.nominal)

    def label(self, ch: int) -> str:
        return self.names.get(ch, f"channel {ch}")

    def param_level(self, name: str, which: dict | None = None) -> int | None:
        """The param value its channels are at (µA), when they all are at one factor of it; else None."""
        which = self.acked if which is None else which
        chans = self.groups.get(name, [])
        if not chans:
            return None
        base = self.param_value[name]
        levels = {Fraction(which[c] * base, self.nominal[c]).__round__() for c in chans}
        return levels.pop() if len(levels) == 1 else None

    # ---- commands --------------------------------------------------------------------------------
    def command(self, action: str, args) -> list[str]:
        """Apply one intensity control; -> what happened, one short text per channel changed or held."""
        from ..formatting import ma

        args = list(args) + [None, None, None]
        requested: dict[int, int] = {}
        if action == "set_intensity":
            value, param, channels = args[:3]
            ua = _to_ua(value)
            for ch in self._channels(param, channels):
                name = self.param_of.get(ch)
                if channels is None and name in self.param_value:
                    requested[ch] = Fraction(ua * self.nominal[ch], self.param_value[name]).__round__()
                else:
                    requested[ch] = ua
        else:
            param, step, channels = args[:3]
            step = self.ctl.intensity_step_ua if step is None else int(step)
            sign = 1 if action == "intensity_up" else -1
            for ch in self._channels(param, channels):
                if param is not None and channels is None:   # the group moves with its param
                    d = Fraction(sign * step * self.nominal[ch], self.param_value[param]).__round__()
                else:
                    d = sign * step
                requested[ch] = self.target[ch] + d
        texts = []
        for ch, want in requested.items():
            old = self.target[ch]
            new = max(0, min(self.hi[ch], want))
            self.target[ch] = new
            name = self.label(ch)
            if new == old:
                if want > old:
                    texts.append(f"{name} at the top of its range ({ma(self.hi[ch])})")
                elif want < old:
                    texts.append(f"{name} already at 0 mA")
                else:
                    texts.append(f"{name} stays at {ma(new)}")
                continue
            text = f"{name} {ma(old)} → {ma(new)}"
            if want > new:
                text += " (the top of its range)"
            m = self.minimum.get(ch)
            if m is not None and new < m:
                text += f", below the {self.param_of[ch]} minimum {ma(m)} (noted in the record)"
            texts.append(text)
        return texts

    @property
    def slewing(self) -> bool:
        return self.value != self.target

    def step(self, dt_us: int) -> dict[int, Fraction]:
        """Move applied values toward their targets; -> {channel: scale factor} to send. The factor is a
        whole number of ppm (exact as a Fraction), so what a device keeps in ppm is exactly what is logged."""
        out = {}
        max_step = max(1, self.ctl.slew_ua_per_s * dt_us // 1_000_000)
        for ch in self.nominal:
            cur, tgt = self.value[ch], self.target[ch]
            if cur == tgt:
                continue
            cur = tgt if abs(tgt - cur) <= max_step else cur + (max_step if tgt > cur else -max_step)
            self.value[ch] = cur
            ppm = min(MAX_SCALE_PPM, Fraction(cur * SCALE_ONE, self.nominal[ch]).__round__())
            self.sent_ppm[ch] = ppm
            out[ch] = Fraction(ppm, SCALE_ONE)
        return out

    # ---- what the device acknowledged -------------------------------------------------------------
    def acknowledge(self, scales_ppm, device_us: int, rec: SessionRecord) -> None:
        """A status report (``scales_ppm``: the scale each channel applies, channel 1 first, when the device
        says): log every channel whose scale changed, at the report's device time, old -> new."""
        if scales_ppm:
            self.reports_scale = True
            for ch in self.nominal:
                if ch - 1 < len(scales_ppm):
                    self._acked(ch, int(scales_ppm[ch - 1]), device_us, rec, "")
        elif self.reports_scale is None or self.reports_scale is False:
            # the device does not say: what was sent is taken as applied when it next reports
            self.reports_scale = False
            for ch in self.nominal:
                self._acked(ch, self.sent_ppm[ch], device_us, rec, "as sent (the device does not report its scale)")

    def flush_unacknowledged(self, device_us: int, rec: SessionRecord) -> None:
        """At the end: a scale sent but never reported back is logged as such (not as applied)."""
        for ch in self.nominal:
            if self.sent_ppm[ch] != self.acked_ppm[ch]:
                from ..formatting import ma

                rec.log("warning", device_us, channel=ch,
                        detail=f"{self.label(ch)}: a change to {ma(self.nominal[ch] * self.sent_ppm[ch] // SCALE_ONE)}"
                               " was sent but not acknowledged by the device")

    def _acked(self, ch: int, ppm: int, device_us: int, rec: SessionRecord, detail: str) -> None:
        if ppm == self.acked_ppm[ch]:
            return
        from ..formatting import ma

        old = self.acked[ch]
        new = Fraction(self.nominal[ch] * ppm, SCALE_ONE).__round__()
        self.acked_ppm[ch] = ppm
        self.acked[ch] = new
        rec.log("intensity", device_us, channel=ch, old_ua=old, new_ua=new, scale_ppm=ppm, detail=detail)
        m = self.minimum.get(ch)
        if m is not None and new < m <= old:
            rec.log("deviation", device_us, channel=ch, old_ua=old, new_ua=new,
                    detail=f"{self.label(ch)} set to {ma(new)}, below the minimum of {self.param_of[ch]} "
                           f"({ma(m)} on this channel)")

    def record_into(self, rec: SessionRecord) -> None:
        rec.channel_ua = dict(self.acked)
        rec.intensity_ua = {}
        for name in self.groups:
            v = self.param_level(name)
            if v is not None:
                rec.intensity_ua[name] = int(v)

    # ---- for the display ---------------------------------------------------------------------------
    def param_values(self, which: dict) -> dict:
        """{param: the value its channels are at} for the display and every progress event (memoised on
        the channel values: they change only when someone turns the intensity)."""
        key = tuple(which.items())
        out = self._param_memo.get(key)
        if out is None:
            out = {}
            for name in self.groups:
                v = self.param_level(name, which)
                if v is not None:
                    out[name] = int(v)
            if len(self._param_memo) >= 256:
                self._param_memo.clear()
            self._param_memo[key] = out
        return dict(out)
