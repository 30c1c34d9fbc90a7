"""``stimscript info FILE``: what a session delivers, channel by channel, with the safety numbers."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ..units import format_number
from ._common import handle_errors
from .options import device_option, device_profile, mode_option, parse_sets, session_option, set_option


def _shape_text(shape) -> str:
    phases = shape.phases
    if shape.kind == "biphasic":
        gap = next((d for d, a in phases[1:-1] if a == 0), 0)
        return f"biphasic {phases[0][0]} µs" + (f" gap {gap} µs" if gap else "")
    if shape.kind == "monophasic":
        return f"monophasic {phases[0][0]} µs"
    if shape.kind == "burst":
        return f"burst {len(phases) // 2}×{phases[0][0]}+{phases[1][0]} µs"
    if len(phases) <= 5:
        return shape.kind + " " + " ".join(f"{a:+g}×{d}" for d, a in phases)
    return f"{shape.kind} ({len(phases)} phases, {shape.duration_us} µs)"


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{digits}g}"


def _duration(us: int) -> str:
    seconds = us / 1e6
    if seconds < 120:
        return f"{seconds:g} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours} h " if hours else "") + f"{minutes} min" + (f" {sec} s" if sec else "")


def _print_weeks(proto, params, file: str) -> None:
    """The progression, week by week: one row per week of the plan, one column per progressed value."""
    from ..compiler.evaluate import fmt

    table = proto.weeks(params)
    console = Console(highlight=False, width=None if Console().is_terminal else 140)
    console.print(f"[bold]{proto.title or file}[/bold]  ({file})")
    if not table.targets:
        console.print("no progression: every week runs the declared values")
        return
    out = Table(title="Progression (the values each week's sessions run with)", title_justify="left")
    out.add_column("week", justify="right")
    out.add_column("sessions", justify="right")
    for target in table.targets:
        out.add_column(target, justify="right")
    for row in table.rows:
        sessions = str(row.first_session) if row.first_session == row.last_session else \
            f"{row.first_session}–{row.last_session}"
        out.add_row(str(row.week), sessions, *(fmt(row.values[t]) if t in row.values else "–" for t in table.targets))
    console.print(out)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@session_option
@set_option
@device_option
@mode_option
@click.option("--weeks", "weeks", is_flag=True,
              help="Print the week-by-week table of every value the progression changes, and nothing else.")
@handle_errors
def info(file: str, session: int, sets: tuple[str, ...], device: str | None, mode: str | None = None,
         weeks: bool = False) -> None:
    """Show channels, sites, electrodes, pulses, charge per phase, densities, pulse counts and duration."""
    from .. import load
    from ..compiler.energy import use_metrics

    from ._fidelity import device_findings, print_report

    proto = load(file, device=device_profile(device))
    params = parse_sets(sets)
    if weeks:
        _print_weeks(proto, params, file)
        return
    device_errors, report = device_findings(proto, device, mode, session, params)
    if device_errors:
        from ..errors import SafetyError

        raise SafetyError(device_errors)
    resolved = proto.resolve(session=session, params=params)
    schedule = proto.compile(session=session, params=params)
    counts = schedule.counts()
    console = Console(highlight=False, width=None if Console().is_terminal else 140)

    from rich.markup import escape

    from ..textsafe import for_terminal

    def shown(text) -> str:  # text from the file never drives the terminal (escapes, rich markup)
        return escape(for_terminal(text))

    title = proto.title or file
    console.print(f"[bold]{shown(title)}[/bold]  ({shown(file)})")
    if proto.header.get("reference"):
        console.print(f"reference: {shown(proto.header['reference'])}")
    plan = proto.plan
    plan_text = (f"{plan.sessions} per {plan.per}, {plan.weeks} weeks ({plan.total_sessions} sessions)"
                 if plan else "single session")
    console.print(f"session {schedule.session} of plan: {plan_text}; week {schedule.week}; "
                  f"device profile: {proto.profile.name}")

    if proto.params:
        ptable = Table(title="Parameters", title_justify="left")
        for col in ("param", "value", "range", "description"):
            ptable.add_column(col)
        for name, p in proto.params.items():
            used = schedule.params.get(name, p.default)
            rng = p.range_text() if getattr(p, "range", None) is not None else "–"
            ptable.add_row(name, str(used), rng, shown(p.description or ""))
        console.print(ptable)

    table = Table(title="Channels", title_justify="left")
    for col, just in (("ch", "right"), ("name", "left"), ("site", "left"), ("electrodes", "left"),
                      ("pulse", "left"), ("freq Hz", "right"), ("ampl mA", "right"), ("pulses", "right")):
        table.add_column(col, justify=just)
    numbers = Table(title="Per pulse and per electrode (500 Ω, full amplitude, smaller electrode)",
                    title_justify="left")
    for col in ("ch", "charge/phase µC", "energy/pulse mJ", "rms mA", "area cm²", "rms mA/cm²", "W/cm²",
                "Shannon k"):
        numbers.add_column(col, justify="right")
    seen = set()
    for use in resolved.uses:
        key = (use.number, use.amplitude_ua, use.frequency_hz, use.shape)
        if key in seen:
            continue
        seen.add(key)
        info_ = schedule.channel(use.number)
        m = use_metrics(use)
        names = " → ".join(f"{e.name}({sign})" for e, sign in zip(use.electrodes, "−+"))
        areas = sorted({format_number(e.area_cm2, 2) for e in use.electrodes})
        electrodes = f"{names} ({'/'.join(areas)} cm²)" if use.electrodes else "–"
        site = f"{info_.site} {info_.side}".strip()
        table.add_row(str(use.number), use.channel, site, electrodes, _shape_text(use.shape),
                      format_number(use.frequency_hz, 3), format_number(use.amplitude_ua / 1000, 3),
                      f"{counts.get(use.number, 0):,}")
        numbers.add_row(str(use.number), _fmt(m.charge_per_phase_uc), _fmt(m.energy_per_pulse_mj),
                        _fmt(m.rms_current_ma), _fmt(m.area_cm2), _fmt(m.rms_current_density_ma_cm2),
                        _fmt(m.power_density_w_cm2), _fmt(m.shannon_k))
    console.print(table)
    console.print("electrodes A → B: A is the cathode (−) of the leading phase, B the anode (+)")
    console.print(numbers)
    if report is not None:
        print_report(report, console)
    total = sum(counts.values())
    console.print(f"duration {_duration(schedule.duration_us)}, {total:,} pulses in all")
    if schedule.segments:
        console.print("blocks: " + "; ".join(
            f"{seg.label} [{seg.start_us / 1e6:g}–{seg.end_us / 1e6:g} s]" for seg in schedule.segments))
    warnings = list(schedule.warnings)
    if warnings:
        console.print(f"[yellow]{len(warnings)} warning(s):[/yellow]")
        for w in warnings:
            click.echo(w.render())
    else:
        console.print("no warnings")
