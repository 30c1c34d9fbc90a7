"""What a session record says, as labelled rows of text: one wording for the end-of-run summary of
``stimscript run`` and the detail view of ``stimscript history ID``, so the two never disagree.

Every value goes through :mod:`stimscript.formatting` (mA, m:ss durations, local times with their offset).
"""
from __future__ import annotations

from .formatting import duration, local_time, ma

#: what each end reason means, in a clinician's words
END_TEXT = {
    "completed": "the whole session was delivered",
    "degraded": "ran to its end, but NOT every scheduled pulse was delivered",
    "stopped": "stopped by the user, output ramped down",
    "emergency_stop": "EMERGENCY STOP, output switched off at once",
    "fault": "the device reported a FAULT and switched the output off",
    "disconnected": "the link to the device was LOST; the device watchdog ends output",
    "interrupted": "the session did not finish normally",
}


def kind_text(rec) -> str:
    """'treatment record' / 'practice run (emulator)' / 'VOID (reason)'."""
    if getattr(rec, "void", False):
        return f"VOID ({rec.void_reason})"
    return "practice run (emulator)" if getattr(rec, "practice", False) else "treatment record"


def stimulation_text(rec) -> str:
    """'14:40 of 15:00' — time with the output running (pauses not counted) of the session's length."""
    stim = rec.stim_us if rec.stim_us is not None else rec.elapsed_us
    return f"{duration(stim)} of {duration(rec.duration_us)}"


def paused_text(rec) -> str:
    return duration(rec.paused_us) if rec.paused_us is not None else "not recorded"


def device_line(rec) -> str:
    from .runtime.records import device_text

    return device_text(rec) + (" · real time" if rec.realtime else " · simulated")


def record_rows(rec) -> list[tuple[str, str]]:
    """The main facts of a record, (label, text), in the order both views print them."""
    rows = [("session", f"{rec.session} (week {rec.week})"),
            ("kind", kind_text(rec)),
            ("patient", rec.patient_id or "–"),
            ("operator", rec.operator_id or "–"),
            ("started", local_time(rec.started_at, seconds=True)),
            ("ended", local_time(rec.ended_at, seconds=True) or "–"),
            ("end reason", f"{rec.end_reason} — {END_TEXT.get(rec.end_reason, '')}".rstrip(" —")),
            ("stimulation", stimulation_text(rec)),
            ("paused", paused_text(rec)),
            ("device", device_line(rec)),
            ("params", ", ".join(f"{k} = {v}" for k, v in rec.params.items()) or "–")]
    if getattr(rec, "end_detail", ""):
        rows.insert(7, ("", rec.end_detail))
    return rows


def channel_rows(rec, names: dict) -> list[tuple[int, str, int, str, str]]:
    """Per channel: (number, name, delivered pulses, peak, intensity at the end)."""
    out = []
    for ch in sorted(set(rec.delivered) | set(rec.peak_ua) | set(rec.channel_ua)):
        out.append((ch, names.get(ch, ""), rec.delivered.get(ch, 0), ma(rec.peak_ua.get(ch, 0)),
                    ma(rec.channel_ua[ch]) if ch in rec.channel_ua else "–"))
    return out
