"""The table of safety and sanity rules (docs/safety.md): code, severity, what it checks, its source.

Codes are stable: tests, docs/safety.md and session records refer to them.
"""
from __future__ import annotations

from .record import Record, init


class Rule(Record):
    """One rule of the table."""

    __slots__ = ("code", "severity", "title", "source")
    code: str
    severity: str  # "error" | "warning"
    title: str
    source: str

    def __init__(self, code: str, severity: str, title: str, source: str) -> None:
        init(self, "code", code)
        init(self, "severity", severity)
        init(self, "title", title)
        init(self, "source", source)


RULES: dict[str, Rule] = {r.code: r for r in [
    Rule("S001", "error", "net charge per pulse is not zero (beyond 1 %) without `allow monophasic`",
         "charge-balanced output; DC causes electrochemical skin injury"),
    Rule("S002", "error", "amplitude outside the device profile", "device limits"),
    Rule("S003", "error", "phase duration outside the device profile", "device limits"),
    Rule("S004", "error", "slot rate (frequency) outside the device profile", "device limits"),
    Rule("S005", "error", "channel number or channel count outside the device profile", "device limits"),
    Rule("S006", "error", "value outside the protocol's own `limits` block", "protocol"),
    Rule("S007", "error", "param value outside its declared range", "protocol"),
    Rule("S008", "error", "energy per pulse into 500 Ω above 300 mJ", "IEC 60601-2-10"),
    Rule("S009", "warning", "rms current density above 2 mA/cm² on an electrode",
         "IEC 60601-2-10 (operator attention)"),
    Rule("S010", "error", "power density above 0.25 W/cm² (500 Ω load)",
         "FDA guidance for powered muscle stimulators"),
    Rule("S011", "warning", "Shannon k = log10(Q/A) + log10(Q) above 1.85",
         "Shannon 1992 (derived for implanted electrodes)"),
    Rule("S012", "warning", "output starts above the threshold without a ramp", "gradual output increase"),
    Rule("S013", "error", "pulses overlap (on one channel, or across channels on a shared current source)",
         "device capability"),
    Rule("S014", "error", "session longer than 24 h", "sanity bound"),
    Rule("S015", "error", "session number outside the plan", "sanity bound"),
    Rule("S016", "error", "the protocol's `limits` block loosens a device limit", "protocol"),
    Rule("S017", "error", "pulse shapes outside the device's encodable space (phases per shape, shape table "
                          "size, number of shapes, relative amplitude range)", "device limits"),
    Rule("S021", "error", "plan longer than 520 weeks (10 years)", "sanity bound (checking is linear in the plan)"),
    Rule("S020", "error", "the delivered pulses cannot be verified (beyond the check's expansion budget, or "
                          "amplitudes beyond the ±2147483.647 mA a pulse schedule holds)",
         "sanity bound (refuse rather than pass unchecked)"),
]}


def severity(code: str) -> str:
    return RULES[code].severity


def s012_hint(use) -> str:
    """The S012 fix that is possible for this use: ``continuous`` has no steps, so no ramp can be added to it."""
    if getattr(use, "cycle", "") == "continuous":
        return ("`continuous` cannot ramp: run a declared cycle with a `ramp up` instead (e.g. `cycle warm { ramp up "
                "2 s; hold 5 min }`), or start at a lower amplitude (`with amplitude 20% intensity`)")
    return "add `ramp up` to the cycle (1–3 s is usual, many periods long) or start at a lower amplitude"
