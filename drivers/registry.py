"""Driver registry: built-in names merged with the ``stimscript.drivers`` entry-point group.

A plug-in package registers ``[project.entry-points."stimscript.drivers"] mydev = "mypkg.driver:MyDriver"``;
the class must subclass :class:`stimscript.drivers.base.Driver`.
"""
from __future__ import annotations

import importlib
from importlib import metadata

from ..errors import DeviceNotFound, DriverError, StimscriptError
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from ..suggest import close_matches

BUILTIN: dict[str, str] = {
    "loopback": "stimscript.drivers.loopback:LoopbackDriver",
    "usb": "stimscript.drivers.usb:UsbDriver",
    "p24": "stimscript.drivers.sciencemode.driver:P24Driver",
    "rehamove3": "stimscript.drivers.sciencemode.driver:RehaMove3Driver",
}
ENTRY_POINT_GROUP = "stimscript.drivers"


def _entry_points() -> dict[str, str]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in eps}


def available_drivers() -> dict[str, str]:
    """name -> "module:Class" for every registered driver (built-ins win over plug-ins of the same name)."""
    out = dict(_entry_points())
    out.update(BUILTIN)
    return dict(sorted(out.items()))


def load_driver_class(name: str):
    drivers = available_drivers()
    if name not in drivers:
        close = close_matches(name, drivers)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DeviceNotFound(f"unknown device driver {name!r} (known: {', '.join(drivers)}){hint}")
    module, _, attr = drivers[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise DriverError(f"driver {name!r} ({drivers[name]}) cannot be loaded: {exc}") from exc
    except Exception as exc:  # a plug-in module that fails while importing must not crash the host
        raise DriverError(f"driver {name!r} ({drivers[name]}) failed while loading: "
                          f"{type(exc).__name__}: {exc}") from exc
    from .base import Driver

    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        what = f"class {cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else f"{type(cls).__name__} object"
        raise DriverError(f"driver {name!r} ({drivers[name]}) is a {what}, not a subclass of "
                          f"stimscript.drivers.base.Driver; a driver must subclass Driver (see docs/drivers.md)")
    return cls


def profile_of(device) -> DeviceProfile:
    """What the compiler checks against for ``device``: None or "loopback" -> the loopback profile; a
    DeviceProfile as is; a driver name -> its class's built-in profile; an open driver -> its capabilities."""
    if device is None:
        return LOOPBACK_PROFILE
    if isinstance(device, DeviceProfile):
        return device
    if isinstance(device, str):
        if device == "loopback":
            return LOOPBACK_PROFILE
        cls = load_driver_class(device)  # DeviceNotFound for unknown names
        for attr in ("PROFILE", "profile", "default_profile", "DEFAULT_PROFILE"):
            prof = getattr(cls, attr, None)
            if isinstance(prof, DeviceProfile):
                return prof
        raise DeviceNotFound(f"device {device!r} reports its profile only when connected; open it and pass "
                             "device=dev.capabilities() (a DeviceProfile)")
    caps = getattr(device, "capabilities", None)
    if callable(caps):
        prof = caps()
        if isinstance(prof, DeviceProfile):
            return prof
    raise StimscriptError(f"device must be a DeviceProfile or a driver name, not {type(device).__name__}")


def open_device(name: str = "loopback", **options):
    """Instantiate the driver registered as ``name`` with ``options`` and open it (HELLO handshake)."""
    cls = load_driver_class(name)
    try:
        dev = cls(**options)
    except TypeError as exc:
        if "abstract" in str(exc):
            raise DriverError(f"driver {name!r} ({cls.__module__}.{cls.__qualname__}) is incomplete: {exc}; "
                              f"it must implement every abstract method of Driver (see docs/drivers.md)") from exc
        raise DriverError(f"bad options for driver {name!r}: {exc}") from exc
    dev.open()
    return dev
