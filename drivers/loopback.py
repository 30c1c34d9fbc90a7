"""The loopback device: the reference emulator reached either directly or through pyusb.

* :class:`LoopbackDriver` (registry name ``loopback``) writes wire frames straight into an in-process
  :class:`~stimscript.drivers.emulator.Emulator` (``dev.emulator``).
* :class:`LoopbackBackend` is a real ``usb.backend.IBackend``: it presents a USB device with real
  descriptors (device, one configuration, one vendor-specific interface, bulk OUT 0x01 and bulk IN 0x81,
  64-byte packets, VID:PID 1209:0001 = pid.codes' test PID) and routes bulk transfers into the same kind of
  emulator, so ``usb.core.find(backend=LoopbackBackend())`` finds it and pyusb's own code runs.
"""
from __future__ import annotations

import errno
import struct
from array import array
from types import SimpleNamespace

import usb.backend
import usb.core
import usb.util

from ..clock import Clock
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from . import wire as w
from .base import DeviceDisconnected, WireDriver
from .emulator import Emulator, EmulatorDisconnected

LOOPBACK_VID = 0x1209
LOOPBACK_PID = 0x0001
EP_OUT = 0x01
EP_IN = 0x81
INTERFACE = 0
CONFIG_VALUE = 1
MANUFACTURER = "stimscript"
PRODUCT = "stimscript loopback stimulator"


class LoopbackDriver(WireDriver):
    """The reference emulator as a driver. ``LoopbackDriver(emulator=None, profile=..., serial=...,
    capture=False)``: ``capture=True`` makes the emulator keep every delivered pulse (``emulator.output``)."""

    name = "loopback"

    def __init__(self, emulator: Emulator | None = None, profile: DeviceProfile = LOOPBACK_PROFILE,
                 serial: str = "LOOPBACK-0001", timeout_ms: int = 1000, capture: bool = False):
        super().__init__(timeout_ms=timeout_ms)
        self.emulator = emulator if emulator is not None else Emulator(profile=profile, serial=serial,
                                                                       capture=capture)

    def use_clock(self, clock) -> bool:
        self.emulator.set_clock(clock)
        self._clock = clock
        return True

    def keepalive_train(self, clock: Clock, times_us: list[int]) -> None:
        """The train handed to the emulator in one call, each frame stamped with its own time (the emulator
        takes each exactly as if written then; :meth:`Emulator.host_write_timed`)."""
        if not times_us or clock.realtime or self._clock is not clock:   # (not the clock the emulator follows)
            super().keepalive_train(clock, times_us)
            return
        with self.lock:
            frames = self._frames_at(w.KEEPALIVE, times_us)
            clock.sleep_until(times_us[-1])
            try:
                self.emulator.host_write_timed(frames, times_us)
            except EmulatorDisconnected as exc:
                raise DeviceDisconnected(str(exc)) from None

    def _open_transport(self) -> None:
        if self.emulator.disconnected:
            raise DeviceDisconnected("the loopback device is disconnected")

    def _close_transport(self) -> None:
        pass

    def _write(self, data: bytes) -> None:
        try:
            self.emulator.host_write(data)
        except EmulatorDisconnected as exc:
            raise DeviceDisconnected(str(exc)) from None

    def _read(self) -> bytes:
        try:
            return self.emulator.host_read(self.read_size)
        except EmulatorDisconnected as exc:
            raise DeviceDisconnected(str(exc)) from None

    def __repr__(self) -> str:
        return f"<LoopbackDriver serial={self.emulator.serial!r}>"


# ---- the pyusb backend ----------------------------------------------------------------------------------

def _string_descriptor(text: str) -> bytes:
    body = text.encode("utf-16-le")
    return bytes([2 + len(body), 3]) + body


class LoopbackBackend(usb.backend.IBackend):
    """A pyusb backend exposing one emulated stimulator. ``backend.emulator`` is its Emulator (made with
    ``capture`` unless one is given: ``capture=True`` keeps every delivered pulse in ``emulator.output``)."""

    def __init__(self, emulator: Emulator | None = None, profile: DeviceProfile = LOOPBACK_PROFILE,
                 serial: str = "LOOPBACK-0001", vid: int = LOOPBACK_VID, pid: int = LOOPBACK_PID,
                 capture: bool = False):
        super().__init__()
        self.emulator = emulator if emulator is not None else Emulator(profile=profile, serial=serial,
                                                                       capture=capture)
        self.vid, self.pid = vid, pid
        self._dev_id = SimpleNamespace(bus=1, address=7)
        self._configured = 0
        self._claimed: set[int] = set()
        self._open_handles = 0
        self.strings = {1: MANUFACTURER, 2: PRODUCT, 3: self.emulator.serial}
        self.transfers = {"bulk_out": 0, "bulk_in": 0, "control": 0}
        self._stamps: tuple[list[int], list[int]] | None = None

    # descriptors -----------------------------------------------------------------------------------
    def _device_desc(self):
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0,
            bMaxPacketSize0=64, idVendor=self.vid, idProduct=self.pid, bcdDevice=0x0100, iManufacturer=1,
            iProduct=2, iSerialNumber=3, bNumConfigurations=1, address=self._dev_id.address, bus=self._dev_id.bus,
            port_number=1, port_numbers=(1,), speed=usb.util.SPEED_FULL)

    def _config_desc(self):
        return SimpleNamespace(bLength=9, bDescriptorType=2, wTotalLength=9 + 9 + 7 + 7, bNumInterfaces=1,
                               bConfigurationValue=CONFIG_VALUE, iConfiguration=0, bmAttributes=0x80, bMaxPower=50,
                               extra_descriptors=[])

    def _intf_desc(self):
        return SimpleNamespace(bLength=9, bDescriptorType=4, bInterfaceNumber=INTERFACE, bAlternateSetting=0,
                               bNumEndpoints=2, bInterfaceClass=0xFF, bInterfaceSubClass=0, bInterfaceProtocol=0,
                               iInterface=0, extra_descriptors=[])

    @staticmethod
    def _ep_desc(address: int):
        return SimpleNamespace(bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=0x02,
                               wMaxPacketSize=64, bInterval=0, bRefresh=0, bSynchAddress=0, extra_descriptors=[])

    def _raw_descriptor(self, dtype: int, index: int, langid: int) -> bytes:
        if dtype == 1:
            d = self._device_desc()
            return struct.pack("<BBHBBBBHHHBBBB", 18, 1, d.bcdUSB, 0, 0, 0, 64, d.idVendor, d.idProduct, d.bcdDevice,
                               1, 2, 3, 1)
        if dtype == 2:
            return (struct.pack("<BBHBBBBB", 9, 2, 32, 1, CONFIG_VALUE, 0, 0x80, 50)
                    + struct.pack("<BBBBBBBBB", 9, 4, INTERFACE, 0, 2, 0xFF, 0, 0, 0)
                    + struct.pack("<BBBBHB", 7, 5, EP_OUT, 2, 64, 0)
                    + struct.pack("<BBBBHB", 7, 5, EP_IN, 2, 64, 0))
        if dtype == 3:
            if index == 0:
                return bytes([4, 3]) + struct.pack("<H", 0x0409)
            if index in self.strings:
                return _string_descriptor(self.strings[index])
        raise usb.core.USBError("Pipe error (unsupported descriptor)", errno=errno.EPIPE)

    # enumeration -----------------------------------------------------------------------------------
    def _alive(self) -> None:
        if self.emulator.disconnected:
            raise usb.core.USBError("No such device (it may have been disconnected)", errno=errno.ENODEV)

    def enumerate_devices(self):
        if not self.emulator.disconnected:
            yield self._dev_id

    def get_parent(self, dev):
        return None

    def get_device_descriptor(self, dev):
        return self._device_desc()

    def get_configuration_descriptor(self, dev, config):
        if config != 0:
            raise IndexError(config)
        return self._config_desc()

    def get_interface_descriptor(self, dev, intf, alt, config):
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError((intf, alt, config))
        return self._intf_desc()

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        if (intf, alt, config) != (0, 0, 0) or ep not in (0, 1):
            raise IndexError(ep)
        return self._ep_desc(EP_OUT if ep == 0 else EP_IN)

    # handles ---------------------------------------------------------------------------------------
    def open_device(self, dev):
        self._alive()
        self._open_handles += 1
        return SimpleNamespace(dev=dev)

    def close_device(self, dev_handle):
        self._open_handles = max(0, self._open_handles - 1)

    def set_configuration(self, dev_handle, config_value):
        self._alive()
        if config_value not in (0, CONFIG_VALUE):
            raise usb.core.USBError("Invalid configuration", errno=errno.EINVAL)
        self._configured = config_value

    def get_configuration(self, dev_handle):
        self._alive()
        return self._configured

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        self._alive()
        if intf != INTERFACE or altsetting != 0:
            raise usb.core.USBError("Invalid interface/alternate setting", errno=errno.EINVAL)

    def claim_interface(self, dev_handle, intf):
        self._alive()
        if intf != INTERFACE:
            raise usb.core.USBError("Invalid interface", errno=errno.EINVAL)
        self._claimed.add(intf)

    def release_interface(self, dev_handle, intf):
        self._claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle, intf):
        return False

    def detach_kernel_driver(self, dev_handle, intf):
        pass

    def attach_kernel_driver(self, dev_handle, intf):
        pass

    def clear_halt(self, dev_handle, ep):
        self._alive()

    def reset_device(self, dev_handle):
        self._alive()
        self._configured = 0
        self._claimed.clear()

    # transfers -------------------------------------------------------------------------------------
    def _check_ready(self, ep: int, intf: int) -> None:
        self._alive()
        if not self._configured:
            raise usb.core.USBError("Device not configured", errno=errno.EIO)
        if intf not in self._claimed:
            raise usb.core.USBError("Interface not claimed", errno=errno.EBUSY)

    def stamp_next_write(self, sizes: list[int], host_times: list[int]) -> None:
        """Virtual time only: the next bulk OUT transfer carries ``len(sizes)`` chunks of those sizes that the
        host wrote at ``host_times`` (a KEEPALIVE train, ``UsbDriver.keepalive_train``): the emulator takes each
        at its own time (:meth:`Emulator.host_write_timed`). The bytes still go through pyusb's bulk write."""
        self._stamps = (list(sizes), list(host_times))

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        stamps, self._stamps = self._stamps, None
        self._check_ready(ep, intf)
        if ep != EP_OUT:
            raise usb.core.USBError("Invalid endpoint", errno=errno.EINVAL)
        payload = data.tobytes() if isinstance(data, array) else bytes(data)
        self.transfers["bulk_out"] += 1
        try:
            if stamps is not None and sum(stamps[0]) == len(payload):
                self.emulator.host_write_timed(payload, stamps[1], sizes=stamps[0])
                return len(payload)
            return self.emulator.host_write(payload)
        except EmulatorDisconnected:
            raise usb.core.USBError("No such device (it may have been disconnected)", errno=errno.ENODEV) from None

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        self._check_ready(ep, intf)
        if ep != EP_IN:
            raise usb.core.USBError("Invalid endpoint", errno=errno.EINVAL)
        size = len(buff) * buff.itemsize
        try:
            data = self.emulator.host_read(size)
        except EmulatorDisconnected:
            raise usb.core.USBError("No such device (it may have been disconnected)", errno=errno.ENODEV) from None
        self.transfers["bulk_in"] += 1
        if not data:
            raise usb.core.USBTimeoutError("Operation timed out", errno=errno.ETIMEDOUT)
        mv = memoryview(buff).cast("B")
        mv[:len(data)] = data
        return len(data)

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        self._alive()
        self.transfers["control"] += 1
        direction_in = bool(bmRequestType & 0x80)
        rtype = (bmRequestType >> 5) & 3
        if rtype != 0:
            raise usb.core.USBError("Pipe error (unsupported request)", errno=errno.EPIPE)
        if direction_in:
            if bRequest == 0x06:  # GET_DESCRIPTOR
                raw = self._raw_descriptor(wValue >> 8, wValue & 0xFF, wIndex)
            elif bRequest == 0x08:  # GET_CONFIGURATION
                raw = bytes([self._configured])
            elif bRequest == 0x00:  # GET_STATUS
                raw = b"\x00\x00"
            elif bRequest == 0x0A:  # GET_INTERFACE
                raw = b"\x00"
            else:
                raise usb.core.USBError("Pipe error (unsupported request)", errno=errno.EPIPE)
            n = min(len(raw), len(data) * data.itemsize)
            mv = memoryview(data).cast("B")
            mv[:n] = raw[:n]
            return n
        if bRequest == 0x09:  # SET_CONFIGURATION
            self.set_configuration(dev_handle, wValue & 0xFF)
        elif bRequest == 0x0B:  # SET_INTERFACE
            self.set_interface_altsetting(dev_handle, wIndex, wValue)
        elif bRequest in (0x01, 0x03):  # CLEAR_FEATURE / SET_FEATURE
            pass
        else:
            raise usb.core.USBError("Pipe error (unsupported request)", errno=errno.EPIPE)
        return len(data) * data.itemsize if data is not None else 0
