"""Drawing a session plot with matplotlib: one amplitude-envelope lane per channel (mA, each block's frequency
labelled), the block strip, and zoomed views of one contraction and of one pulse of each shape."""
from __future__ import annotations

from fractions import Fraction
from typing import Iterable

import numpy as np

from ..formatting import ma_label, seconds_label, us_or_ms
from .envelope import DEFAULT_BINS, Envelope, envelope, held_peaks
from .labels import freq_text, lane_label, plot_title, shape_label, time_scale

_LANE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


#: fill patterns that keep lanes apart in print and for readers who do not tell the colours apart
_HATCHES = (None, "////", "\\\\\\\\", "xxx", "...", "---", "|||", "+++")


def _shape_uses(schedule) -> dict[int, dict[int, int]]:
    """shape index -> {channel: full amplitude µA} (largest train amplitude), from the trains alone."""
    uses: dict[int, dict[int, int]] = {}
    for tr in schedule.trains:
        amp = round(Fraction(tr.amp_num, tr.amp_den))
        per = uses.setdefault(tr.shape, {})
        per[tr.channel] = max(per.get(tr.channel, 0), amp)
    if not uses:
        for info in schedule.channels:
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
        pause = seg.kind == "pause"
        if not pause:
            block_no += 1
        color = "#e8e8e8" if pause else ("#cfe0f3" if block_no % 2 else "#e3edf8")
        ax.axvspan(x0, x1, ymin=0.05, ymax=0.95, facecolor=color, edgecolor="#7f8c99", linewidth=0.6,
                   hatch="///" if pause else None)
        width_px = (seg.end_us - seg.start_us) * px_per_us
        label = str(seg.label or ("pause" if pause else f"block {block_no}"))
        candidates = [label, label.split(" ", 1)[0], str(block_no) if not pause else ""]
        for text in candidates:
            if text and len(text) * char_px + 6 < width_px:
                ax.text((x0 + x1) / 2, 0.5, text, ha="center", va="center", fontsize=8.5, clip_on=True,
                        color="#333333")
                break
    ax.set_ylabel("blocks", rotation=0, ha="right", va="center", fontsize=9)
    ax.tick_params(axis="x", labelbottom=False, length=0)


def _draw_lane(ax, edges: np.ndarray, row_ua: np.ndarray, scale: float, color: str, hatch=None) -> None:
    x = np.repeat(edges / scale, 2)[1:-1]
    yy = np.repeat(row_ua / 1000.0, 2)
    ax.fill_between(x, 0, yy, color=color, alpha=0.30, linewidth=0, hatch=hatch, edgecolor=color)
    ax.plot(x, yy, color=color, linewidth=0.9)


def _boundaries(axes, segments, scale: float) -> None:
    seen = set()
    for seg in segments:
        for t in (seg.start_us, seg.end_us):
            if t in seen:
                continue
            seen.add(t)
            for ax in axes:
                ax.axvline(t / scale, color="#7f8c99", linewidth=0.6, linestyle=(0, (3, 3)), zorder=0)


def _plot_into_ax(schedule, ax, env: Envelope, scale: float, unit: str) -> None:
    """Compact form: all lanes stacked in one axes, each scaled to its own peak."""
    infos = {c.number: c for c in schedule.channels}
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
        ylabels.append(lane_label(infos.get(number), number).replace("\n", " · ") + f" ({ma_label(top)})")
    _boundaries([ax], schedule.segments, scale)
    ax.set_yticks(yticks, ylabels, fontsize=8)
    ax.set_ylim(-0.1, max(1, n))
    ax.set_xlim(0, schedule.duration_us / scale)
    ax.set_xlabel(f"time ({unit})")


def _block_trains(schedule, seg) -> dict[int, list]:
    """Channel -> the trains that deliver inside ``seg``."""
    out: dict[int, list] = {}
    for tr in schedule.trains:
        if tr.start_us < seg.end_us and tr.end_us > seg.start_us:
            out.setdefault(tr.channel, []).append(tr)
    return out


def _label_blocks(ax, schedule, number: int, scale: float, top: float, px_per_us: float, color: str) -> None:
    """Each block's frequency (and the amplitude at full output) inside the lane, where it fits."""
    for seg in schedule.segments:
        if seg.kind == "pause":
            continue
        trains = _block_trains(schedule, seg).get(number)
        if not trains:
            continue
        amp = max(round(Fraction(tr.amp_num, tr.amp_den)) for tr in trains)
        width_px = (seg.end_us - seg.start_us) * px_per_us
        for text in (f"{freq_text(trains)} · {ma_label(amp)}", freq_text(trains)):
            if len(text) * 6.0 + 8 < width_px:
                ax.text((seg.start_us + seg.end_us) / 2 / scale, top * 0.93, text, ha="center", va="top",
                        fontsize=7.5, color="#222222", clip_on=True, zorder=5,
                        bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor=color, linewidth=0.6,
                                  alpha=0.9))
                break


def _inset_train(schedule):
    """The train whose first contraction the inset shows: the first with a ramp (the ramp is visible), else
    the first that has a rest, else the first train."""
    trains = sorted(schedule.trains, key=lambda tr: (tr.start_us, tr.channel))
    for pick in (lambda tr: tr.ramp_up_us or tr.ramp_down_us, lambda tr: tr.cycle_us > tr.on_us, lambda tr: True):
        for tr in trains:
            if pick(tr):
                return tr
    return None


def _contraction_inset(ax, schedule, infos, numbers, tr) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    t0 = tr.start_us
    length = tr.cycle_us if tr.cycle_us > tr.on_us else min(tr.cycle_us, 2_000_000)
    if tr.cycle_us > tr.on_us:   # a long rest is shown in part, so the ramps stay wide enough to see
        length = min(tr.cycle_us, max(tr.on_us * 8 // 5, tr.on_us + 1))
    pulses = schedule.window(t0, t0 + length)
    mine = pulses[pulses["channel"] == tr.channel]
    j = numbers.index(tr.channel) if tr.channel in numbers else 0
    color = _LANE_COLORS[j % len(_LANE_COLORS)]
    amp = Fraction(tr.amp_num, tr.amp_den) / 1000
    x = (mine["t_us"].astype(np.int64) - t0) / 1e6
    ax.vlines(x, 0, mine["amplitude_ua"] / 1000.0, color=color, linewidth=0.5, alpha=0.75, label="pulses")
    up, down, on = tr.ramp_up_us / 1e6, tr.ramp_down_us / 1e6, tr.on_us / 1e6
    ax.plot([0, up, on - down, on], [0, float(amp), float(amp), 0], color="#333333", linewidth=1.0,
            linestyle=(0, (4, 2)), label="envelope")
    phases = [("ramp up", 0, up), ("hold", up, on - down), ("ramp down", on - down, on),
              ("rest", on, length / 1e6)]
    rest_s = (tr.cycle_us - tr.on_us) / 1e6
    shades = {"ramp up": "#fff1c9", "hold": "#e3f1e1", "ramp down": "#fde2d2", "rest": "#f2f2f2"}
    short = {"ramp up": "↗", "hold": "hold", "ramp down": "↘", "rest": "rest"}
    px_per_s = ax.get_window_extent().width / max(1e-9, length / 1e6)
    for k, (name, a, b) in enumerate(phases):
        if b - a <= 0:
            continue
        ax.axvspan(a, b, color=shades[name], zorder=0, linewidth=0)
        d = rest_s if name == "rest" else b - a
        more = " →" if name == "rest" and rest_s > b - a + 1e-9 else ""
        for text in (f"{name} {seconds_label(d)}{more}", f"{short[name]} {seconds_label(d)}{more}", short[name]):
            if len(text) * 4.6 + 2 < (b - a) * px_per_s:
                break
        else:
            text = f"{short[name]} {seconds_label(d)}"
        # narrow phases alternate between two heights so neighbouring labels never overlap
        ax.text((a + b) / 2, float(amp) * (1.27 if k % 2 == 0 else 1.13), text, ha="center", va="top",
                fontsize=7.3, color="#333333", clip_on=False)
    ax.set_xlim(0, length / 1e6)
    ax.set_ylim(0, float(amp) * 1.32 if amp else 1)
    ax.legend(fontsize=6.8, loc="center right", frameon=False, handlelength=1.4)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} mA"))
    ax.set_xlabel("s from the start of the contraction", fontsize=8)
    ax.tick_params(labelsize=7.5)
    info = infos.get(tr.channel)
    name = f"ch {tr.channel}" + (f" {info.name}" if info is not None and info.name else "")
    segments = list(schedule.segments)
    seg = next((s for s in segments if s.start_us <= t0 < s.end_us), None)
    where = f"in block {segments.index(seg) + 1} “{seg.label}”" if seg is not None else ""
    what = "One contraction" if tr.cycle_us > tr.on_us else "The first 2 s (no rest: continuous)"
    ax.set_title(f"{what}: {name}\n{where.lstrip(', ')}\n{len(mine)} pulses at {freq_text([tr])}, "
                 f"{ma_label(float(amp) * 1000)} at full output", fontsize=8.5, loc="left")


def _pulse_inset(ax, shape, lines: list, numbers) -> None:
    """One pulse of ``shape`` at each distinct full amplitude (channels at the same amplitude share a line),
    each phase labelled with its duration."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    lo, hi = 0.0, 0.0
    styles = ("-", "--", ":", "-.")
    others = ""
    if len(lines) > 3:   # many amplitudes: one outline at the largest, the others named in its legend
        rest = lines[1:]
        count = sum(len(cs) for _, cs in rest)
        others = f"\n+{count} more ch at {ma_label(rest[-1][0])}–{ma_label(rest[0][0])}"
        lines = lines[:1]
    for k, (amp_ua, chans) in enumerate(lines):
        jj = numbers.index(chans[0]) if chans[0] in numbers else 0
        x, y = _shape_xy(shape, amp_ua / 1000.0)
        label = ("ch " + ", ".join(str(c) for c in chans)) + f" · {ma_label(amp_ua)}" + (others if k == 0 else "")
        ax.plot(x, y, color=_LANE_COLORS[jj % len(_LANE_COLORS)], linewidth=1.3, linestyle=styles[k % 4],
                label=label)
        lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
    pad = 0.28 * max(1.0, hi - lo)
    ax.set_ylim(lo - pad, hi + pad)
    span = float(shape.duration_us) or 1.0
    phases = tuple(shape.phases)
    shown = span
    if len(phases) > 6:   # a burst: its first few phases, so each one can be seen
        shown = float(sum(d for d, _ in phases[:6]))
    ax.set_xlim(-0.05 * shown, 1.05 * shown)
    ax.axhline(0, color="#999999", linewidth=0.5)
    if len(phases) <= 6:   # label each phase's duration (a burst's many phases: only the total)
        t = 0.0
        for d, a in phases:
            mid = t + d / 2
            if a == 0:
                ax.text(mid, pad * 0.25, f"gap\n{us_or_ms(d)}", ha="center", va="bottom", fontsize=6.8, color="#555555")
            else:
                level = hi if a > 0 else lo
                ax.text(mid, level + (pad * 0.15 if a > 0 else -pad * 0.15), us_or_ms(d), ha="center",
                        va="bottom" if a > 0 else "top", fontsize=7, color="#333333")
            t += d
    note = f"\nfirst 6 of {len(phases)} phases shown" if len(phases) > 6 else ""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("µs", fontsize=8, labelpad=1)
    ax.set_ylabel("mA", fontsize=8, labelpad=1)
    ax.tick_params(labelsize=7)
    ax.set_title("One pulse\n" + shape_label(shape) + note, fontsize=8.5, loc="left")
    ax.legend(fontsize=6.8, loc="upper right", frameon=False, handlelength=1.6, borderaxespad=0.2,
              labelspacing=0.25, framealpha=0.8)


def _shape_lines(schedule) -> list[tuple[int, list]]:
    """(shape index, [(full amplitude µA, [channels])]) in shape order."""
    out = []
    for si, per in _shape_uses(schedule).items():
        if si >= len(schedule.shapes):
            continue
        by_amp: dict[int, list] = {}
        for ch, amp in sorted(per.items()):
            by_amp.setdefault(amp, []).append(ch)
        out.append((si, sorted(by_amp.items(), key=lambda kv: -kv[0])))
    return out


def plot_schedule(schedule, ax=None, **kw):
    """Plot a Schedule; returns the matplotlib Figure (``ax.figure`` when ``ax`` is given).

    The full figure: one lane per channel (amplitude envelope in mA, each block's frequency and amplitude
    labelled, a lane identical to an earlier one says so), the blocks, and below a zoomed view of one
    contraction (its pulses under the ramp-hold-ramp envelope) and of one pulse of each shape (its phases
    and their durations). Keywords: ``bins`` (points per lane, default 2000), ``max_pulses`` (block size while
    streaming), ``shapes`` (draw the zoomed views, default True), ``title`` (str or False), ``width`` (inches).
    With ``ax``, every lane is drawn stacked inside that axes (no zoomed views). Uses ``schedule.blocks()``
    and one contraction's ``schedule.window()``, never ``schedule.pulses``.
    """
    # a bare Figure (not pyplot): no GUI backend, no global state; savefig picks Agg/SVG by format
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    bins = int(kw.pop("bins", DEFAULT_BINS))
    max_pulses = int(kw.pop("max_pulses", 65536))
    show_insets = bool(kw.pop("shapes", True))
    title = kw.pop("title", None)
    width = float(kw.pop("width", 12.0))
    if kw:
        raise TypeError(f"plot_schedule() got unexpected keyword(s): {', '.join(sorted(kw))}")

    env = envelope(schedule, bins=bins, max_pulses=max_pulses)
    scale, unit = time_scale(schedule.duration_us)
    if ax is not None:
        _plot_into_ax(schedule, ax, env, scale, unit)
        return ax.figure

    infos = {c.number: c for c in schedule.channels}
    segments = tuple(schedule.segments)
    numbers = env.channels or (0,)
    n = len(numbers)
    shape_lines = _shape_lines(schedule) if show_insets else []
    inset_tr = _inset_train(schedule) if show_insets else None
    per_row = 3
    pulse_rows = (len(shape_lines) + per_row - 1) // per_row if shape_lines else 0
    inset_rows = max(1 if inset_tr is not None else 0, pulse_rows)

    # layout in inches, top to bottom, then converted to figure fractions
    lane_h = 1.0 if n <= 2 else (0.85 if n <= 4 else 0.62)
    text = plot_title(schedule) if title is None else (title or "")
    title_h, strip_h, xlab_h = (0.85 if text else 0.08), 0.38, 0.8
    row_h, row_gap, head_h = 1.75, 0.85, 0.85
    main_h = strip_h + n * lane_h
    insets_h = (head_h + inset_rows * row_h + (inset_rows - 1) * row_gap + 0.5) if inset_rows else 0.0
    total = 0.12 + title_h + main_h + xlab_h + insets_h + 0.12
    fig = Figure(figsize=(width, total))
    left, right = 2.0 / width, 1 - 1.15 / width

    def frac(y_in: float) -> float:  # inches from the top -> figure fraction from the bottom
        return 1 - y_in / total

    y = 0.12
    tax = fig.add_axes((left, frac(y + title_h), right - left, title_h / total))
    y += title_h
    gs = fig.add_gridspec(1 + n, 1, height_ratios=[strip_h] + [lane_h] * n, hspace=0.0,
                          left=left, right=right, top=frac(y), bottom=frac(y + main_h))
    y += main_h + xlab_h

    tax.axis("off")
    if text:
        head, _, sub = text.partition("\n")
        tax.text(0, 0.68, head, fontsize=13, fontweight="bold", ha="left", va="center", transform=tax.transAxes)
        if sub:
            tax.text(0, 0.22, sub, fontsize=9.5, color="#444444", ha="left", va="center", transform=tax.transAxes)

    lane_axes = []
    first = None
    for j, _number in enumerate(numbers):
        lax = fig.add_subplot(gs[1 + j], sharex=first)
        first = first or lax
        lane_axes.append(lax)
    strip = fig.add_subplot(gs[0], sharex=first)
    xmax = schedule.duration_us / scale
    first.set_xlim(0, xmax)

    px_width = (right - left) * width * fig.dpi
    px_per_us = px_width / max(1, schedule.duration_us)
    drawn = held_peaks(env, schedule, px_width)
    ymax = max(1.0, float(env.peak_ua.max()) / 1000.0 if env.peak_ua.size else 1.0)
    top = ymax * 1.3
    mA = FuncFormatter(lambda v, _: f"{v:.4g} mA")
    for j, (lax, number) in enumerate(zip(lane_axes, numbers)):
        color = _LANE_COLORS[j % len(_LANE_COLORS)]
        if env.channels:
            _draw_lane(lax, env.edges_us, drawn[j], scale, color, _HATCHES[j % len(_HATCHES)])
            _label_blocks(lax, schedule, number, scale, top, px_per_us, color)
        lax.set_ylim(0, top)
        # ticks at 0 and the session's peak (and half of it when lanes are tall): every lane on one scale
        lax.set_yticks([0, ymax / 2, ymax] if n <= 4 else [0, ymax])
        lax.yaxis.set_major_formatter(mA)
        lax.tick_params(axis="y", labelsize=7.5, length=2, pad=1)
        lax.set_ylabel(lane_label(infos.get(number), number), rotation=0, ha="right", va="center",
                       fontsize=9 if n <= 4 else 8.5, labelpad=8, color=color, linespacing=1.1)
        peak = int(env.peak_ua[j].max()) if env.channels else 0
        same = next((numbers[k] for k in range(j) if np.array_equal(env.peak_ua[k], env.peak_ua[j])), None)
        note = f"{ma_label(peak)}\n{env.pulses.get(number, 0):,} p" + (f"\n= ch {same}" if same is not None else "")
        lax.text(1.008, 0.5, note, transform=lax.transAxes, fontsize=7.5, va="center", ha="left", color="#444444")
        lax.spines["top"].set_visible(j == 0)
        lax.spines["right"].set_visible(False)
        if j < n - 1:
            lax.tick_params(axis="x", labelbottom=False, length=0)
        lax.grid(axis="y", color="#eeeeee", linewidth=0.6)
    lane_axes[0].text(1.008, 1.0, "peak,\npulses", transform=lane_axes[0].transAxes, fontsize=7,
                      va="bottom", ha="left", color="#777777")
    dense = any(not np.array_equal(drawn[j], env.peak_ua[j]) for j in range(len(env.channels)))
    lane_axes[-1].set_xlabel(f"time ({unit})\namplitude envelope in mA (largest pulse per bin"
                             + ("; cycles too short to draw shown as a band at their peak" if dense else "")
                             + ")  ·  boxes: each block's frequency · amplitude  ·  (−) cathode, (+) anode",
                             fontsize=8.5, linespacing=1.5)
    lane_axes[-1].tick_params(axis="x", labelsize=8.5)
    _boundaries(lane_axes, segments, scale)
    if segments:
        _segment_strip(strip, segments, scale, schedule.duration_us)
    else:
        strip.axis("off")

    if inset_rows:
        fig.text(left, frac(y + 0.05), "Zoomed in", fontsize=10, fontweight="bold", ha="left", va="bottom")
        y += head_h
        rows_h = inset_rows * row_h + (inset_rows - 1) * row_gap
        cols = 1 + per_row if inset_tr is not None else per_row
        sub = fig.add_gridspec(inset_rows, cols, left=left, right=right, top=frac(y), bottom=frac(y + rows_h),
                               wspace=0.45, hspace=row_gap / row_h, width_ratios=([1.9] if inset_tr is not None else [])
                               + [1] * per_row)
        if inset_tr is not None:
            _contraction_inset(fig.add_subplot(sub[0, 0]), schedule, infos, list(numbers), inset_tr)
        off = 1 if inset_tr is not None else 0
        for k, (si, lines) in enumerate(shape_lines):
            _pulse_inset(fig.add_subplot(sub[k // per_row, off + k % per_row]), schedule.shapes[si], lines,
                         list(numbers))
    return fig


def save_plot(schedule, path: str, dpi: int = 150, **kw) -> str:
    """Plot ``schedule`` and write PNG or SVG by the file's suffix; returns the path."""
    fmt = str(path).rsplit(".", 1)[-1].lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"plot output must end in .png or .svg, not .{fmt}")
    fig = plot_schedule(schedule, **kw)
    fig.savefig(path, format=fmt, dpi=dpi, facecolor="white")
    return str(path)
