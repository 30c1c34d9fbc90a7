"""The words of a session plot: lane labels, pulse-shape labels, the title and a block's frequencies (their
numbers are written by stimscript/formatting.py)."""
from __future__ import annotations

from fractions import Fraction

from ..formatting import hz, two_units, us_or_ms

def time_scale(duration_us: int) -> tuple[float, str]:
    """(µs per display unit, unit name) that suits a session of this length."""
    seconds = duration_us / 1e6
    if seconds <= 180:
        return 1e6, "s"
    if seconds <= 5 * 3600:
        return 60e6, "min"
    return 3600e6, "h"


def lane_label(info, number: int) -> str:
    """'ch 1 · quad' / 'vastus medialis R' for a ChannelInfo (or just 'ch N' without one)."""
    if info is None:
        return f"ch {number}"
    first = f"ch {number}" + (f" · {info.name}" if info.name else "")
    site = info.site.replace("_", " ")
    side = info.side
    if site and side:
        site = f"{site} {side[:1].upper()}"
    if len(site) > 20:
        import textwrap

        site = "\n".join(textwrap.wrap(site, 20))
    pair = tuple(info.electrodes)
    polarity = f"{pair[0]}(−) → {pair[1]}(+)" if len(pair) == 2 and all(pair) else ""
    return first + (f"\n{site}" if site else "") + (f"\n{polarity}" if polarity else "")


def shape_label(shape) -> str:
    """A one-line description of a PulseShape from its phases."""
    phases = tuple(shape.phases)
    kind = shape.kind or "custom"
    width = phases[0][0] if phases else 0
    gaps = [d for d, a in phases if a == 0]
    total = sum(d for d, _ in phases)
    if kind in ("biphasic", "monophasic", "asymmetric") or len(phases) <= 3:
        text = f"{kind} {us_or_ms(width)}"
        if kind == "asymmetric" and len(phases) >= 2:
            second = [d for d, a in phases[1:] if a != 0]
            if second:
                text += f" / {us_or_ms(second[0])}"
        if gaps and kind != "doublet":
            text += f", gap {us_or_ms(gaps[0])}"
        return text
    if kind == "burst" and len(phases) >= 2:
        carrier = phases[0][0] + phases[1][0]
        return f"burst {1e3 / carrier:.3g} kHz carrier, {us_or_ms(total)}"
    if kind == "doublet":
        return f"doublet {us_or_ms(width)}, {us_or_ms(total)} in all"
    return f"{kind} {len(phases)} phases, {us_or_ms(total)}"


def plot_title(schedule) -> str:
    title = schedule.title or schedule.source_name or "stimscript schedule"
    parts = []
    if schedule.session:
        parts.append(f"session {schedule.session}")
    if schedule.week:
        parts.append(f"week {schedule.week}")
    parts.append(two_units(schedule.duration_us))
    params = schedule.params
    if params:
        from ..compiler.evaluate import fmt

        parts.append(", ".join(f"{k} = {fmt(v)}" for k, v in params.items()))   # '300 µs', as info writes it
    return f"{title}\n" + " · ".join(parts)


def freq_text(trains) -> str:
    freqs = sorted({Fraction(tr.period_den * 1_000_000, tr.period_num) for tr in trains})
    return " / ".join(hz(f, kilo=False) if f else "" for f in freqs)
