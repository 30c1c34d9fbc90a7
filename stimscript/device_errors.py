"""The errors of talking to a device, part of :mod:`stimscript.errors` (the one error hierarchy).

They live in a module of their own so that what never talks to a device (``stimscript check``) does not build
them: an exception class, with its long chain of bases, costs about 140,000 instructions to create, these five
together about half a percent of a small file's check. :mod:`stimscript.errors` imports this module when one
of them is first asked for (``from stimscript.errors import DriverError`` works as before), and their home
stays ``stimscript.errors`` (``__module__``): the same names in tracebacks, reprs and pickles.
"""
from __future__ import annotations

from .errors import StimscriptError


class DriverError(StimscriptError):
    """Anything that goes wrong talking to a device."""

    __module__ = "stimscript.errors"


class DeviceNotFound(DriverError):
    """No device matched (unknown driver name, no USB device with that VID/PID/serial)."""

    __module__ = "stimscript.errors"


class DeviceTimeout(DriverError):
    """The device did not answer in time."""

    __module__ = "stimscript.errors"


class DeviceFault(DriverError):
    """The device reported a fault (electrode, over-limit, watchdog)."""

    __module__ = "stimscript.errors"


class ProtocolMismatch(DriverError):
    """The device speaks a wire-protocol version or framing we do not understand."""

    __module__ = "stimscript.errors"
