"""USB stimulators speaking the stimscript wire protocol over two bulk endpoints (pyusb).

``UsbDriver(backend=None, vid=0x1209, pid=0x0001, serial=None, timeout_ms=1000)``: finds the device with
``usb.core.find(idVendor=vid, idProduct=pid, backend=backend)`` (optionally matching the serial-number
string), sets its configuration, claims interface 0 and uses its first bulk OUT / bulk IN endpoints.
Without a backend it uses libusb-1.0 from ``libusb_package`` (falling back to pyusb's default search).
With ``backend=LoopbackBackend()`` it talks to the emulator through pyusb's real code path and
``dev.emulator`` is the backend's emulator.
"""
from __future__ import annotations

import errno
from array import array
from typing import Any

import usb.core
import usb.util

from ..clock import Clock
from ..errors import DeviceNotFound, DeviceTimeout, DriverError
from . import wire as w
from .base import DeviceDisconnected, WireDriver
from .loopback import LOOPBACK_PID, LOOPBACK_VID

_GONE = {errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN, errno.EPIPE, 19}


def default_backend():
    """libusb-1.0 via libusb_package, else whatever pyusb finds (None: pyusb's own search)."""
    try:
        import libusb_package

        backend = libusb_package.get_libusb1_backend()
        if backend is not None:
            return backend
    except Exception:  # pragma: no cover - depends on the platform
        pass
    return None


class UsbDriver(WireDriver):
    name = "usb"

    def __init__(self, backend=None, vid: int = LOOPBACK_VID, pid: int = LOOPBACK_PID, serial: str | None = None,
                 timeout_ms: int = 1000, interface: int = 0, read_timeout_ms: int = 2):
        super().__init__(timeout_ms=timeout_ms)
        self.backend = backend
        self.vid, self.pid, self.wanted_serial = int(vid), int(pid), serial
        self.interface = interface
        self.read_timeout_ms = read_timeout_ms
        self.usb_device = None
        self.ep_out: Any = None   # usb.core.Endpoint once open (pyusb ships no type information)
        self.ep_in: Any = None
        self._rx_buf: array | None = None

    @property
    def emulator(self):
        """The emulator behind a LoopbackBackend (AttributeError for real hardware)."""
        emu = getattr(self.backend, "emulator", None)
        if emu is None:
            raise AttributeError("this USB device is real hardware: it has no emulator")
        return emu

    def use_clock(self, clock) -> bool:
        emu = getattr(self.backend, "emulator", None)
        if emu is None:
            return False
        emu.set_clock(clock)
        self._clock = clock
        return True

    def keepalive_train(self, clock: Clock, times_us: list[int]) -> None:
        """Behind an emulator backend that follows ``clock`` (virtual time): the train goes out as one bulk
        OUT transfer through pyusb, each frame stamped with the time it was sent (``LoopbackBackend
        .stamp_next_write``), so the emulator takes each at its own time; otherwise one KEEPALIVE per time."""
        stamp = getattr(self.backend, "stamp_next_write", None)
        if not times_us or stamp is None or clock.realtime or self._clock is not clock:
            super().keepalive_train(clock, times_us)
            return
        with self.lock:
            frames = self._frames_at(w.KEEPALIVE, times_us)
            clock.sleep_until(times_us[-1])
            stamp([len(f) for f in frames], times_us)
            self._write(b"".join(frames))

    def _find(self):
        backend = self.backend if self.backend is not None else default_backend()
        try:
            found = list(usb.core.find(find_all=True, idVendor=self.vid, idProduct=self.pid, backend=backend))
        except usb.core.NoBackendError as exc:
            raise DeviceNotFound("no USB backend available: install libusb-1.0 (pip install libusb-package)") from exc
        except usb.core.USBError as exc:
            raise DeviceNotFound(f"cannot enumerate USB devices: {exc}") from exc
        if self.wanted_serial is not None:
            matches = []
            for d in found:
                try:
                    if d.serial_number == self.wanted_serial:
                        matches.append(d)
                except (usb.core.USBError, ValueError):
                    continue
            if not matches:
                raise DeviceNotFound(f"no USB stimulator {self.vid:04x}:{self.pid:04x} with serial "
                                     f"{self.wanted_serial!r} ({len(found)} other device(s) with that VID:PID)")
            found = matches
        if not found:
            raise DeviceNotFound(
                f"no USB stimulator {self.vid:04x}:{self.pid:04x} found: is it plugged in and switched on, and "
                f"may this user access it (on Linux a udev rule)? Use --device loopback to run on the emulator.")
        return found[0]

    def _open_transport(self) -> None:
        dev = self._find()
        try:
            try:
                if dev.is_kernel_driver_active(self.interface):
                    dev.detach_kernel_driver(self.interface)
            except (NotImplementedError, usb.core.USBError):
                pass
            dev.set_configuration()
            cfg = dev.get_active_configuration()
            intf = cfg[(self.interface, 0)]
            usb.util.claim_interface(dev, intf)
            self.ep_out = usb.util.find_descriptor(
                intf, custom_match=lambda e: usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_OUT
                and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK)
            self.ep_in = usb.util.find_descriptor(
                intf, custom_match=lambda e: usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_IN
                and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK)
            if self.ep_out is None or self.ep_in is None:
                raise DriverError(f"USB device {self.vid:04x}:{self.pid:04x} has no bulk IN/OUT endpoint pair")
        except usb.core.USBError as exc:
            raise self._map(exc, "opening") from exc
        self.usb_device = dev

    def _close_transport(self) -> None:
        if self.usb_device is not None:
            try:
                usb.util.dispose_resources(self.usb_device)
            except usb.core.USBError:
                pass
            self.usb_device = None

    def _map(self, exc: usb.core.USBError, what: str) -> DriverError:
        if isinstance(exc, usb.core.USBTimeoutError):
            return DeviceTimeout(f"USB timeout while {what}: {exc}")
        if exc.errno in _GONE or "No such device" in str(exc):
            return DeviceDisconnected(f"the USB stimulator was disconnected while {what}: {exc}")
        return DriverError(f"USB error while {what}: {exc}")

    def _write(self, data: bytes) -> None:
        try:
            n = self.ep_out.write(data, timeout=self.timeout_ms)
        except usb.core.USBError as exc:
            raise self._map(exc, "writing") from exc
        if n != len(data):
            raise DriverError(f"short USB write: {n} of {len(data)} bytes")

    def _read(self) -> bytes:
        buf = self._rx_buf
        if buf is None or len(buf) != self.read_size:
            # one receive buffer for the session: pyusb reads into it instead of allocating one per transfer
            buf = self._rx_buf = array("B", bytes(self.read_size))
        out = b""
        for _ in range(64):
            try:
                n = self.ep_in.read(buf, timeout=self.read_timeout_ms)
            except usb.core.USBTimeoutError:
                break
            except usb.core.USBError as exc:
                if exc.errno == errno.ETIMEDOUT:
                    break
                raise self._map(exc, "reading") from exc
            if not n:
                break
            out += memoryview(buf)[:n]
            if n < len(buf):
                break
        return out

    def __repr__(self) -> str:
        return f"<UsbDriver {self.vid:04x}:{self.pid:04x} serial={self.serial!r}>"
