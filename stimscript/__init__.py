"""stimscript: write, check, compile and stream multi-channel NMES protocols.

Public API (the README's Python API)::

    proto = stimscript.load("examples/tka_quadriceps.stim")
    sched = proto.compile(session=1, params={"intensity": "45 mA"})
    record = stimscript.run(sched, device="loopback", realtime=False)
"""
from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .compiler.schedule import Schedule
    from .errors import (
        DeviceFault,
        DeviceNotFound,
        DeviceTimeout,
        Diagnostic,
        DriverError,
        ParamError,
        PlanError,
        ProtocolError,
        ProtocolMismatch,
        ProtocolSemanticError,
        ProtocolSyntaxError,
        SafetyError,
        StimscriptError,
    )
    from .profile import LOOPBACK_PROFILE, DeviceProfile
    from .runtime.records import SessionRecord
    from .units import Quantity

__version__ = "0.1.0"

__all__ = [
    "load", "loads", "run", "open_device", "fidelity", "Schedule", "Quantity", "DeviceProfile", "LOOPBACK_PROFILE",
    "StimscriptError", "ProtocolError", "ProtocolSyntaxError", "ProtocolSemanticError", "SafetyError",
    "ParamError", "PlanError", "DriverError", "DeviceNotFound", "DeviceTimeout", "DeviceFault",
    "ProtocolMismatch", "Diagnostic", "SessionRecord",
]


def load(path, *, device=None):
    """Parse and check a ``.stim`` file; returns a CheckedProtocol (raises ProtocolError).

    ``device``: a DeviceProfile, a driver name or an open driver (default: the loopback profile)."""
    from .compiler import load as _load

    return _load(path, device=_profile(device))


def loads(text: str, name: str = "<string>", *, device=None):
    """Parse and check protocol text; returns a CheckedProtocol (raises ProtocolError)."""
    from .compiler import loads as _loads

    return _loads(text, name=name, device=_profile(device))


def _profile(device) -> DeviceProfile | None:
    """The compiler takes a DeviceProfile; names and open drivers are resolved here, through the registry."""
    if device is None:
        return None
    from .profile import DeviceProfile

    if isinstance(device, DeviceProfile):
        return device
    from .drivers.registry import profile_of

    return profile_of(device)


def run(schedule, device="loopback", realtime: bool = False, **options):
    """Stream a Schedule to a device and return its SessionRecord."""
    from .runtime import run as _run

    return _run(schedule, device=device, realtime=realtime, **options)


def fidelity(schedule, device="p24", mode=None):
    """How faithfully ``device`` reproduces ``schedule`` (period and rate error, pulses per on-phase, onset
    uncertainty, amplitude rounding, ramp staircase, shape): a FidelityReport, offline from the device's
    timing model. ``device``: "p24", "rehamove3" (``mode="low-level"`` for their low level), "loopback"."""
    from .programs.fidelity import fidelity as _f

    return _f(schedule, device, mode=mode)


def open_device(name: str = "loopback", **options):
    """Open a registered driver by name (``loopback``, ``usb``, or an entry-point plug-in)."""
    from .drivers import open_device as _open

    return _open(name, **options)


#: public name -> the module that defines it, imported on first access (PEP 562): ``import stimscript`` costs
#: nothing, so ``stimscript --help`` and the commands load only what they use
_LAZY = {
    **dict.fromkeys(("StimscriptError", "ProtocolError", "ProtocolSyntaxError", "ProtocolSemanticError", "SafetyError",
                     "ParamError", "PlanError", "DriverError", "DeviceNotFound", "DeviceTimeout", "DeviceFault",
                     "ProtocolMismatch", "Diagnostic"), "errors"),
    "DeviceProfile": "profile", "LOOPBACK_PROFILE": "profile", "Quantity": "units",
    "Schedule": "compiler.schedule", "SessionRecord": "runtime.records",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stimscript' has no attribute {name!r}")
    path = f"{__name__}.{module}"
    __import__(path)
    value = getattr(sys.modules[path], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
