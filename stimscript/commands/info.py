"""``stimscript info FILE``: what a session delivers, channel by channel, with the safety numbers."""
from __future__ import annotations

from fractions import Fraction

import click
from rich.console import Console, JustifyMethod
from rich.table import Table

from ..formatting import duration_text, ma_number, significant
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


def _cycle_text(cycle) -> str:
    """'contraction 3/12/0/45 s': ramp up / hold / ramp down / rest of one contraction."""
    if cycle.continuous:
        return "continuous"
    parts = "/".join(format_number(Fraction(us, 1_000_000), 3)
                     for us in (cycle.ramp_up_us, cycle.hold_us, cycle.ramp_down_us, cycle.rest_us))
    return f"{cycle.name} {parts} s".strip()


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
    schedule = proto.compile(session=session, params=params)
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
        from ..compiler.evaluate import fmt

        ptable = Table(title="Parameters", title_justify="left")
        for col in ("param", "value", "range", "description"):
            ptable.add_column(col)
        for name, p in proto.params.items():
            used = schedule.params.get(name, p.default)
            rng = p.range_text() if getattr(p, "range", None) is not None else "–"
            ptable.add_row(name, fmt(used), rng, shown(p.description or ""))   # '250 µs', as the range is written
        console.print(ptable)

    desc = proto.describe(session=session, params=params)
    table = Table(title="Channels", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("ch", "right"), ("name", "left"), ("site", "left"), ("electrodes", "left"),
        ("pulse", "left"), ("freq Hz", "right"), ("ampl mA", "right"), ("pulses", "right"))
    for col, just in columns:
        table.add_column(col, justify=just)
    for ch in desc.channels:
        pair = [e for e in (ch.cathode, ch.anode) if e is not None]
        names = " → ".join(f"{e.name}({sign})" for e, sign in zip(pair, "−+"))
        areas = sorted({format_number(e.area_cm2, 2) for e in pair})
        electrodes = f"{names} ({'/'.join(areas)} cm²)" if pair else "–"
        site = shown(ch.site.text) if ch.site is not None else "–"
        table.add_row(str(ch.number), ch.name, site, electrodes, _shape_text(ch.pulse),
                      format_number(ch.frequency_hz, 3), ma_number(ch.amplitude_ua),
                      f"{ch.pulses:,}")
    console.print(table)
    console.print("electrodes A → B: A is the cathode (−) of the leading phase, B the anode (+)")

    blocks = Table(title="Blocks per channel (what each channel runs in each block of the session)",
                   title_justify="left")
    columns = (("ch", "right"), ("#", "right"), ("block", "left"), ("cycle", "left"), ("freq Hz", "right"),
               ("ampl mA", "right"), ("contr.", "right"), ("pulses", "right"))
    for col, just in columns:
        blocks.add_column(col, justify=just)
    for ch in desc.channels:
        rows = [(b, bc) for b in desc.blocks for bc in b.channels if bc.number == ch.number]
        for b, bc in rows:
            blocks.add_row(str(ch.number), str(b.number), shown(b.label), _cycle_text(bc.cycle),
                           format_number(bc.frequency_hz, 3), ma_number(bc.amplitude_ua),
                           "–" if bc.cycle.continuous else str(bc.contractions), f"{bc.pulses:,}")
        blocks.add_row(str(ch.number), "", f"[bold]total {shown(ch.name)}[/bold]", "", "", "",
                       str(sum(bc.contractions for _, bc in rows if not bc.cycle.continuous))
                       if any(not bc.cycle.continuous for _, bc in rows) else "–",
                       f"[bold]{ch.pulses:,}[/bold]", end_section=True)
    console.print(blocks)
    console.print("cycle: ramp up/hold/ramp down/rest; contr.: contractions (cycles) that start in the block")
    pauses = [b for b in desc.blocks if b.kind == "pause"]
    if pauses:
        console.print("pauses (no output): " + "; ".join(
            f"block {b.number} {shown(b.label)} ({duration_text(b.duration_us)})" for b in pauses))

    numbers = Table(title="Per pulse and per electrode (500 Ω, full amplitude, smaller electrode)",
                    title_justify="left")
    for col in ("ch", "charge/phase µC", "energy/pulse mJ", "rms mA", "area cm²", "rms mA/cm²", "W/cm²",
                "Shannon k"):
        numbers.add_column(col, justify="right")
    for row in desc.pulse_numbers:
        m = row.metrics
        numbers.add_row(str(row.number), significant(m.charge_per_phase_uc), significant(m.energy_per_pulse_mj),
                        significant(m.rms_current_ma), significant(m.area_cm2), significant(m.rms_current_density_ma_cm2),
                        significant(m.power_density_w_cm2), significant(m.shannon_k))
    console.print(numbers)
    if report is not None:
        print_report(report, console)
    total = sum(ch.pulses for ch in desc.channels)
    console.print(f"duration {duration_text(desc.duration_us)}, {total:,} pulses in all")
    warnings = list(schedule.warnings)
    if warnings:
        console.print(f"[yellow]{len(warnings)} warning(s):[/yellow]")
        for w in warnings:
            click.echo(w.render())
    else:
        console.print("no warnings")
