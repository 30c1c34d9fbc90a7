"""stimscript.drivers: the driver base class and registry, the wire protocol, USB and loopback devices.

``open_device(name, **options)`` opens a registered driver; ``available_drivers()`` lists them.
"""
from __future__ import annotations

from .base import DeviceDisconnected, Driver, WireDriver
from .events import DeviceLost, DeviceStatus, FaultReport, PulsesDelivered, StatusReport
from .registry import available_drivers, load_driver_class, open_device

__all__ = ["Driver", "WireDriver", "DeviceStatus", "DeviceDisconnected", "PulsesDelivered", "StatusReport",
           "FaultReport", "DeviceLost", "open_device", "available_drivers", "load_driver_class"]
