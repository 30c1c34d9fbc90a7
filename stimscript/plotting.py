"""Plots of a compiled session: one amplitude-envelope lane per channel, the blocks, the pulse shapes.

Nothing here ever materialises ``schedule.pulses``: the envelope is a per-bin maximum computed by
streaming :meth:`Schedule.blocks`, so a 2-hour, 8-channel session costs the same memory as a 1-minute one
and the figure never holds more than ``bins`` points per lane.

    >>> fig = plot_schedule(schedule)                 # full figure: lanes + block strip + pulse shapes
    >>> fig.savefig("session.png", dpi=150)
    >>> plot_schedule(schedule, ax=ax)                # compact: every lane stacked in one existing axes

The compiler's Schedule knows nothing of plotting (the compiler sits below the package face, see
docs/architecture.md): plot a schedule with ``plot_schedule(schedule)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

import numpy as np

__all__ = ["Envelope", "envelope", "plot_schedule", "save_plot", "lane_label", "shape_label", "time_scale"]

#: default number of bins per lane (each bin shows the largest amplitude delivered in it)
DEFAULT_BINS = 2000

_LANE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


# --- envelope ---------------------------------------------------------------------------------------
@dataclass
class Envelope:
    """Per-bin maximum amplitude of each channel over the session.

    ``edges_us`` has ``bins + 1`` entries (bin ``i`` covers ``edges_us[i] <= t < edges_us[i+1]``);
    ``peak_ua[j, i]`` is the largest amplitude (µA) channel ``channels[j]`` delivers in bin ``i``
    (0 when it is idle). ``pulses`` counts the pulses seen per channel while streaming.
    """

    channels: tuple[int, ...]
    edges_us: np.ndarray
    peak_ua: np.ndarray
    pulses: dict

    @property
    def bins(self) -> int:
        return len(self.edges_us) - 1


def _channel_numbers(schedule) -> tuple[int, ...]:
    numbers = {c.number for c in getattr(schedule, "channels", ())}
    numbers |= {tr.channel for tr in getattr(schedule, "trains", ())}
    return tuple(sorted(numbers))


def _max_period_us(schedule) -> dict[int, float]:
    """Longest pulse period per channel (µs): the gap below which the envelope is held, not dropped."""
    out: dict[int, float] = {}
    for tr in getattr(schedule, "trains", ()):
        p = tr.period_num / tr.period_den
        out[tr.channel] = max(out.get(tr.channel, 0.0), p)
    return out


def envelope(schedule, bins: int = DEFAULT_BINS, max_pulses: int = 65536) -> Envelope:
    """Stream ``schedule.blocks(max_pulses)`` into per-bin, per-channel maximum amplitudes.

    Memory is ``O(bins * channels + max_pulses)`` whatever the session's length. Bins narrower than a
    channel's pulse period would show a comb (empty bins between pulses); such gaps shorter than one
    period are filled with the amplitude of the pulse before them (sample and hold), so a lane shows the
    contraction, not the aliasing.
    """
    duration = max(1, int(schedule.duration_us))
    bins = max(1, min(int(bins), duration))
    numbers = _channel_numbers(schedule)
    index = np.full(256, -1, dtype=np.int64)
    for j, n in enumerate(numbers):
        index[n] = j
    nch = max(1, len(numbers))
    flat = np.zeros(nch * bins, dtype=np.int64)
    counts = np.zeros(nch, dtype=np.int64)
    for block in schedule.blocks(max_pulses):
        if len(block) == 0:
            continue
        t = block["t_us"].astype(np.int64, copy=False)
        b = np.minimum((t * bins) // duration, bins - 1)
        j = index[block["channel"]]
        keep = j >= 0
        if not keep.all():  # pragma: no cover - channels come from the trains, so this never drops
            b, j, t = b[keep], j[keep], t[keep]
        amp = block["amplitude_ua"][keep] if not keep.all() else block["amplitude_ua"]
        np.maximum.at(flat, j * bins + b, amp.astype(np.int64, copy=False))
        counts += np.bincount(j, minlength=nch)[:nch]
    peak = flat.reshape(nch, bins)

    # sample-and-hold across empty bins shorter than one pulse period
    bin_us = duration / bins
    periods = _max_period_us(schedule)
    idx = np.arange(bins)
    for j, n in enumerate(numbers):
        hold_bins = int(np.ceil(periods.get(n, 0.0) / bin_us))
        if hold_bins < 1:
            continue
        row = peak[j]
        nz = row > 0
        if not nz.any():
            continue
        last = np.maximum.accumulate(np.where(nz, idx, -1))
        fill = (~nz) & (last >= 0) & (idx - last < hold_bins)
        if fill.any():
            row[fill] = row[last[fill]]

    edges = (np.arange(bins + 1, dtype=np.float64) * duration / bins)
    return Envelope(numbers, edges, peak[: len(numbers)],
                    {n: int(counts[j]) for j, n in enumerate(numbers)})


# --- labels -----------------------------------------------------------------------------------------
def time_scale(duration_us: int) -> tuple[float, str]:
    """(µs per display unit, unit name) that suits a session of this length."""
    seconds = duration_us / 1e6
    if seconds <= 180:
        return 1e6, "s"
    if seconds <= 5 * 3600:
        return 60e6, "min"
    return 3600e6, "h"


def _fmt_hz(f) -> str:
    f = Fraction(f)
    if f == 0:
        return ""
    if f.denominator == 1:
        return f"{f.numerator} Hz"
    return f"{float(f):.4g} Hz"


def _fmt_us(us: float) -> str:
    if us >= 1000 and us % 1000 == 0:
        return f"{us / 1000:g} ms"
    return f"{us:g} µs"


def _fmt_ma(ua: float) -> str:
    return f"{ua / 1000:.3g} mA" if ua < 10_000 else f"{ua / 1000:.4g} mA"


def lane_label(info, number: int) -> str:
    """'ch 1 · quad' / 'vastus medialis R' for a ChannelInfo (or just 'ch N' without one)."""
    if info is None:
        return f"ch {number}"
    first = f"ch {number}" + (f" · {info.name}" if getattr(info, "name", "") else "")
    site = (getattr(info, "site", "") or "").replace("_", " ")
    side = getattr(info, "side", "") or ""
    if site and side:
        site = f"{site} {side[:1].upper()}"
    if len(site) > 20:
        import textwrap

        site = "\n".join(textwrap.wrap(site, 20))
    pair = tuple(getattr(info, "electrodes", ()) or ())
    polarity = f"{pair[0]}(−) → {pair[1]}(+)" if len(pair) == 2 and all(pair) else ""
    return first + (f"\n{site}" if site else "") + (f"\n{polarity}" if polarity else "")


def shape_label(shape) -> str:
    """A one-line description of a PulseShape from its phases."""
    phases = tuple(shape.phases)
    kind = getattr(shape, "kind", "custom") or "custom"
    width = phases[0][0] if phases else 0
    gaps = [d for d, a in phases if a == 0]
    total = sum(d for d, _ in phases)
    if kind in ("biphasic", "monophasic", "asymmetric") or len(phases) <= 3:
        text = f"{kind} {_fmt_us(width)}"
        if kind == "asymmetric" and len(phases) >= 2:
            second = [d for d, a in phases[1:] if a != 0]
            if second:
                text += f" / {_fmt_us(second[0])}"
        if gaps and kind != "doublet":
            text += f", gap {_fmt_us(gaps[0])}"
        return text
    if kind == "burst" and len(phases) >= 2:
        carrier = phases[0][0] + phases[1][0]
        return f"burst {1e3 / carrier:.3g} kHz carrier, {_fmt_us(total)}"
    if kind == "doublet":
        return f"doublet {_fmt_us(width)}, {_fmt_us(total)} in all"
    return f"{kind} {len(phases)} phases, {_fmt_us(total)}"


def _shape_uses(schedule) -> dict[int, dict[int, int]]:
    """shape index -> {channel: full amplitude µA} (largest train amplitude), from the trains alone."""
    uses: dict[int, dict[int, int]] = {}
    for tr in getattr(schedule, "trains", ()):
        amp = round(Fraction(tr.amp_num, tr.amp_den))
        per = uses.setdefault(tr.shape, {})
        per[tr.channel] = max(per.get(tr.channel, 0), amp)
    if not uses:
        for info in getattr(schedule, "channels", ()):
            uses.setdefault(info.shape, {})[info.number] = info.amplitude_ua
    return dict(sorted(uses.items()))


def _shape_xy(shape, amp_ma: float) -> tuple[np.ndarray, np.ndarray]:
    """Step outline of one pulse (x in µs, y in mA), starting and ending at 0."""
    durations = np.array([d for d, _ in shape.phases], dtype=float)
    levels = np.array([a for _, a in shape.phases], dtype=float) * amp_ma
    edges = np.concatenate([[0.0], np.cumsum(durations)])
    x = np.repeat(edges, 2)
    y = np.concatenate([[0.0], np.repeat(levels, 2), [0.0]])
    return x, y


# --- drawing ----------------------------------------------------------------------------------------
def _segment_strip(ax, segments: Iterable, scale: float, duration_us: int) -> None:
    """Blocks as alternating bands with their labels, pauses hatched; labels that do not fit are dropped
    (numbered instead when a number fits)."""
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig = ax.figure
    bbox = ax.get_window_extent()
    px_per_us = bbox.width / max(1, duration_us)
    char_px = 6.2 * fig.dpi / 100  # about one 8.5 pt character
    block_no = 0
    for seg in segments:
        x0, x1 = seg.start_us / scale, seg.end_us / scale
        pause = getattr(seg, "kind", "block") == "pause"
        if not pause:
            block_no += 1
        color = "#e8e8e8" if pause else ("#cfe0f3" if block_no % 2 else "#e3edf8")
        ax.axvspan(x0, x1, ymin=0.05, ymax=0.95, facecolor=color, edgecolor="#7f8c99", linewidth=0.6,
                   hatch="///" if pause else None)
        width_px = (seg.end_us - seg.start_us) * px_per_us
        label = str(getattr(seg, "label", "") or ("pause" if pause else f"block {block_no}"))
        candidates = [label, label.split(" ", 1)[0], str(block_no) if not pause else ""]
        for text in candidates:
            if text and len(text) * char_px + 6 < width_px:
                ax.text((x0 + x1) / 2, 0.5, text, ha="center", va="center", fontsize=8.5, clip_on=True,
                        color="#333333")
                break
    ax.set_ylabel("blocks", rotation=0, ha="right", va="center", fontsize=9)
    ax.tick_params(axis="x", labelbottom=False, length=0)


def _draw_lane(ax, env: Envelope, j: int, scale: float, color: str) -> None:
    edges = env.edges_us / scale
    y = env.peak_ua[j] / 1000.0
    # steps: each bin is a flat top over its width
    x = np.repeat(edges, 2)[1:-1]
    yy = np.repeat(y, 2)
    ax.fill_between(x, 0, yy, color=color, alpha=0.35, linewidth=0)
    ax.plot(x, yy, color=color, linewidth=0.8)


def _boundaries(axes, segments, scale: float) -> None:
    seen = set()
    for seg in segments:
        for t in (seg.start_us, seg.end_us):
            if t in seen:
                continue
            seen.add(t)
            for ax in axes:
                ax.axvline(t / scale, color="#7f8c99", linewidth=0.6, linestyle=(0, (3, 3)), zorder=0)


def _title(schedule) -> str:
    title = getattr(schedule, "title", "") or getattr(schedule, "source_name", "") or "stimscript schedule"
    parts = []
    if getattr(schedule, "session", None):
        parts.append(f"session {schedule.session}")
    if getattr(schedule, "week", None):
        parts.append(f"week {schedule.week}")
    mins, secs = divmod(round(schedule.duration_us / 1e6), 60)
    hours, mins = divmod(mins, 60)
    parts.append(f"{hours} h {mins:02d} min" if hours else (f"{mins} min {secs:02d} s" if mins else f"{secs} s"))
    params = getattr(schedule, "params", None) or {}
    if params:
        parts.append(", ".join(f"{k} = {v}" for k, v in params.items()))
    return f"{title}\n" + " · ".join(parts)


def _plot_into_ax(schedule, ax, env: Envelope, scale: float, unit: str) -> None:
    """Compact form: all lanes stacked in one axes, each scaled to its own peak."""
    infos = {c.number: c for c in getattr(schedule, "channels", ())}
    n = len(env.channels)
    yticks, ylabels = [], []
    for j, number in enumerate(env.channels):
        base = n - 1 - j
        top = max(1, int(env.peak_ua[j].max()))
        edges = env.edges_us / scale
        x = np.repeat(edges, 2)[1:-1]
        yy = np.repeat(env.peak_ua[j] / top * 0.85, 2) + base
        color = _LANE_COLORS[j % len(_LANE_COLORS)]
        ax.fill_between(x, base, yy, color=color, alpha=0.35, linewidth=0)
        ax.plot(x, yy, color=color, linewidth=0.8)
        yticks.append(base + 0.4)
        ylabels.append(lane_label(infos.get(number), number).replace("\n", " · ") + f" ({_fmt_ma(top)})")
    _boundaries([ax], getattr(schedule, "segments", ()), scale)
    ax.set_yticks(yticks, ylabels, fontsize=8)
    ax.set_ylim(-0.1, max(1, n))
    ax.set_xlim(0, schedule.duration_us / scale)
    ax.set_xlabel(f"time ({unit})")


def plot_schedule(schedule, ax=None, **kw):
    """Plot a Schedule; returns the matplotlib Figure (``ax.figure`` when ``ax`` is given).

    Keywords: ``bins`` (points per lane, default 2000), ``max_pulses`` (block size while streaming),
    ``shapes`` (draw the pulse-shape panel, default True), ``title`` (str or False), ``width`` (inches).
    With ``ax``, every lane is drawn stacked inside that axes (no shape panel).
    Uses only ``schedule.blocks()``, never ``schedule.pulses``.
    """
    # a bare Figure (not pyplot): no GUI backend, no global state; savefig picks Agg/SVG by format
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    bins = int(kw.pop("bins", DEFAULT_BINS))
    max_pulses = int(kw.pop("max_pulses", 65536))
    show_shapes = bool(kw.pop("shapes", True))
    title = kw.pop("title", None)
    width = float(kw.pop("width", 11.0))
    if kw:
        raise TypeError(f"plot_schedule() got unexpected keyword(s): {', '.join(sorted(kw))}")

    env = envelope(schedule, bins=bins, max_pulses=max_pulses)
    scale, unit = time_scale(schedule.duration_us)
    if ax is not None:
        _plot_into_ax(schedule, ax, env, scale, unit)
        return ax.figure

    infos = {c.number: c for c in getattr(schedule, "channels", ())}
    segments = tuple(getattr(schedule, "segments", ()) or ())
    numbers = env.channels or (0,)
    n = len(numbers)
    uses = _shape_uses(schedule) if show_shapes else {}
    shape_items = [(i, u) for i, u in uses.items() if i < len(schedule.shapes)]
    shape_cols = 4
    shape_rows = (len(shape_items) + shape_cols - 1) // shape_cols if shape_items else 0

    # layout in inches, top to bottom, then converted to figure fractions
    lane_h = 1.0 if n <= 2 else (0.85 if n <= 4 else 0.62)
    text = _title(schedule) if title is None else (title or "")
    title_h, strip_h, xlab_h = (0.85 if text else 0.08), 0.38, 0.62
    head_h, row_h, row_gap = 0.78, 1.45, 0.95
    main_h = strip_h + n * lane_h
    shapes_h = (head_h + shape_rows * row_h + (shape_rows - 1) * row_gap + 0.45) if shape_rows else 0.0
    total = 0.12 + title_h + main_h + xlab_h + shapes_h + 0.12
    fig = Figure(figsize=(width, total))
    left, right = 2.0 / width, 1 - 0.95 / width

    def frac(y_in: float) -> float:  # inches from the top -> figure fraction from the bottom
        return 1 - y_in / total

    y = 0.12
    tax = fig.add_axes((left, frac(y + title_h), right - left, title_h / total))
    y += title_h
    gs = fig.add_gridspec(1 + n, 1, height_ratios=[strip_h] + [lane_h] * n, hspace=0.0,
                          left=left, right=right, top=frac(y), bottom=frac(y + main_h))
    y += main_h + xlab_h

    # title
    tax.axis("off")
    if text:
        head, _, sub = text.partition("\n")
        tax.text(0, 0.68, head, fontsize=13, fontweight="bold", ha="left", va="center", transform=tax.transAxes)
        if sub:
            tax.text(0, 0.22, sub, fontsize=9.5, color="#444444", ha="left", va="center", transform=tax.transAxes)

    lane_axes = []
    first = None
    for j in range(len(numbers)):
        lax = fig.add_subplot(gs[1 + j], sharex=first)
        first = first or lax
        lane_axes.append(lax)
    strip = fig.add_subplot(gs[0], sharex=first)
    xmax = schedule.duration_us / scale
    first.set_xlim(0, xmax)

    ymax = max(1.0, float(env.peak_ua.max()) / 1000.0 if env.peak_ua.size else 1.0)
    top = ymax * 1.18
    for j, (lax, number) in enumerate(zip(lane_axes, numbers)):
        color = _LANE_COLORS[j % len(_LANE_COLORS)]
        if env.channels:
            _draw_lane(lax, env, j, scale, color)
        lax.set_ylim(0, top)
        lax.yaxis.set_major_locator(MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10], integer=True, min_n_ticks=2))
        lax.tick_params(axis="y", labelsize=7.5, length=2, pad=1)
        lax.set_ylabel(lane_label(infos.get(number), number), rotation=0, ha="right", va="center",
                       fontsize=9 if n <= 4 else 8.5, labelpad=10, color=color, linespacing=1.1)
        peak = int(env.peak_ua[j].max()) if env.channels else 0
        lax.text(1.008, 0.5, f"{_fmt_ma(peak)}\n{env.pulses.get(number, 0):,} p", transform=lax.transAxes,
                 fontsize=7.5, va="center", ha="left", color="#444444")
        lax.spines["top"].set_visible(j == 0)
        lax.spines["right"].set_visible(False)
        if j < n - 1:
            lax.tick_params(axis="x", labelbottom=False, length=0)
        lax.grid(axis="y", color="#eeeeee", linewidth=0.6)
    lane_axes[0].text(1.008, 1.0, "peak,\npulses", transform=lane_axes[0].transAxes, fontsize=7,
                      va="bottom", ha="left", color="#777777")
    lane_axes[-1].set_xlabel(f"time ({unit})  ·  amplitude envelope in mA (largest pulse per bin)  ·  "
                             "(−) cathode, (+) anode of the leading phase", fontsize=9)
    lane_axes[-1].tick_params(axis="x", labelsize=8.5)
    _boundaries(lane_axes, segments, scale)
    if segments:
        _segment_strip(strip, segments, scale, schedule.duration_us)
    else:
        strip.axis("off")

    # pulse shapes
    if shape_rows:
        fig.text(left, frac(y + 0.25), "Pulse shapes (one pulse at each channel's full amplitude)", fontsize=10,
                 fontweight="bold", ha="left", va="bottom")
        y += head_h
        rows_h = shape_rows * row_h + (shape_rows - 1) * row_gap
        sub = fig.add_gridspec(shape_rows, shape_cols, left=left, right=right, top=frac(y),
                               bottom=frac(y + rows_h), wspace=0.62, hspace=row_gap / row_h)
        for k, (si, chans) in enumerate(shape_items):
            sax = fig.add_subplot(sub[k // shape_cols, k % shape_cols])
            shape = schedule.shapes[si]
            lo, hi = 0.0, 0.0
            for number, amp in sorted(chans.items()):
                jj = numbers.index(number) if number in numbers else 0
                x, y = _shape_xy(shape, amp / 1000.0)
                sax.plot(x, y, color=_LANE_COLORS[jj % len(_LANE_COLORS)], linewidth=1.2,
                         label=f"ch {number}")
                lo, hi = min(lo, y.min()), max(hi, y.max())
            pad = 0.12 * max(1.0, hi - lo)
            sax.set_ylim(lo - pad, hi + pad)
            span = float(shape.duration_us) or 1.0
            sax.set_xlim(-0.06 * span, 1.06 * span)
            sax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            sax.axhline(0, color="#999999", linewidth=0.5)
            kind, _, rest = shape_label(shape).partition(" ")
            sax.set_title(f"{kind}\n{rest}" if rest else kind, fontsize=8.5, linespacing=1.15)
            sax.set_xlabel("µs", fontsize=8, labelpad=1)
            sax.set_ylabel("mA", fontsize=8, labelpad=1)
            sax.tick_params(labelsize=7)
            sax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.0, 1.02), frameon=False,
                       handlelength=1.0, borderaxespad=0.2, labelspacing=0.25)
    return fig


def save_plot(schedule, path: str, dpi: int = 150, **kw) -> str:
    """Plot ``schedule`` and write PNG or SVG by the file's suffix; returns the path."""
    fmt = str(path).rsplit(".", 1)[-1].lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"plot output must end in .png or .svg, not .{fmt}")
    fig = plot_schedule(schedule, **kw)
    fig.savefig(path, format=fmt, dpi=dpi, facecolor="white")
    return str(path)
