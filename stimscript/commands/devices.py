"""``stimscript devices``: the registered drivers and, for those that open without hardware, their profile."""
from __future__ import annotations

import click

from ._common import handle_errors

#: drivers that can be opened with no hardware attached
NO_HARDWARE = ("loopback",)
#: serial-port drivers with a built-in profile (listed with the serial ports found)
SERIAL = ("p24", "rehamove3")


@click.command("devices")
@handle_errors
def devices() -> None:
    """List registered device drivers and what they report."""
    from ..drivers import available_drivers, open_device
    from ..errors import StimscriptError

    rows = []
    for name, target in available_drivers().items():
        report = "-"
        if name in NO_HARDWARE:
            try:
                with open_device(name) as dev:
                    p = dev.capabilities()
                    report = (f"serial {dev.serial}: {p.channels} channels, 0-{p.max_current_ua / 1000:g} mA in "
                              f"{p.current_step_ua} µA steps, phases {p.min_phase_us} µs-{p.max_phase_us / 1000:g} ms, "
                              f"≤ {p.max_rate_hz} Hz, {p.time_base_us} µs time base, queue {p.queue_pulses} pulses, "
                              f"watchdog {p.watchdog_ms} ms, "
                              f"{'independent' if p.independent_sources else 'shared'} current sources")
            except StimscriptError as exc:
                report = f"cannot open: {exc}"
        elif name in SERIAL:
            from ..programs.models import MODELS

            sp = MODELS[name].profile
            assert sp is not None  # the ScienceMode models carry their device's profile
            report = (f"ScienceMode over a serial port: {sp.channels} channels, 0-{sp.max_current_ua / 1000:g} mA in "
                      f"{sp.current_step_ua / 1000:g} mA steps, device-timed periods on a {sp.time_base_us / 1000:g} ms "
                      f"grid (`stimscript run FILE --device {name} --port PATH`; "
                      f"`stimscript emulate {name}` to try it)")
        else:
            report = "needs hardware (open it with `stimscript run --device " + name + "`)"
        rows.append((name, target, report))
    width = max(len(r[0]) for r in rows)
    twidth = max(len(r[1]) for r in rows)
    click.echo(f"{'driver'.ljust(width)}  {'class'.ljust(twidth)}  reports")
    for name, target, report in rows:
        click.echo(f"{name.ljust(width)}  {target.ljust(twidth)}  {report}")
    from ..drivers.sciencemode.transport import serial_ports

    ports = serial_ports()
    click.echo("serial ports: " + ("none found" if not ports else ""))
    for path, desc in ports:
        click.echo(f"  {path}  {desc}")
