"""Options several sub-commands share (--session, --set, --device)."""
from __future__ import annotations

import click

from ..errors import ParamError


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """``--set intensity=45mA`` pairs -> {"intensity": "45mA"}; a malformed pair is a ParamError."""
    params: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ParamError(f"--set expects NAME=VALUE (e.g. intensity=45mA), got {item!r}")
        params[name.strip()] = value.strip()
    return params


session_option = click.option("--session", "-s", "session", type=click.IntRange(min=1), default=1, show_default=True,
                              help="Session number of the plan (selects the week of the progression).")
set_option = click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                          help="Override a param, e.g. --set intensity=45mA (repeatable).")
device_option = click.option("--device", "-d", default=None, metavar="NAME",
                             help="Check against this device's profile (default: loopback).")
mode_option = click.option("--mode", type=click.Choice(["mid-level", "low-level"]), default=None,
                           help="ScienceMode devices (p24, rehamove3): mid level, the device times the pulses "
                                "(default), or low level, the host sends every pulse.")


def device_profile(device: str | None):
    """What ``load(device=...)`` takes for ``--device NAME``: the built-in profile of a device with a timing
    model (p24, rehamove3: checked offline, no hardware needed), else the name itself."""
    if device is None:
        return None
    from ..programs.models import MODELS

    model = MODELS.get(device)
    return model.profile if model is not None else device
