"""The USB driver over pyusb's real code path, with the loopback emulator as a pyusb backend.

``usb.core.find`` is never mocked: LoopbackBackend is a real ``usb.backend.IBackend``.
"""
from __future__ import annotations

import numpy as np
import pytest
import usb.backend
import usb.core
import usb.util

import stimscript
from stimscript.drivers.base import DeviceDisconnected
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import EP_IN, EP_OUT, LOOPBACK_PID, LOOPBACK_VID, LoopbackBackend
from stimscript.drivers.usb import UsbDriver
from stimscript.drivers import wire as w
from stimscript.errors import DeviceNotFound
from stimscript.runtime.testing import nmes_schedule


def test_pyusb_finds_and_describes_the_emulated_device():
    backend = LoopbackBackend(capture=True)
    assert isinstance(backend, usb.backend.IBackend)
    dev = usb.core.find(idVendor=LOOPBACK_VID, idProduct=LOOPBACK_PID, backend=backend)
    assert dev is not None
    assert (dev.idVendor, dev.idProduct, dev.bNumConfigurations) == (0x1209, 0x0001, 1)
    assert dev.manufacturer == "stimscript" and dev.product == "stimscript loopback stimulator"
    assert dev.serial_number == "LOOPBACK-0001"
    cfg = dev[0]
    intf = cfg[(0, 0)]
    assert intf.bInterfaceClass == 0xFF and intf.bNumEndpoints == 2
    eps = [(e.bEndpointAddress, usb.util.endpoint_type(e.bmAttributes)) for e in intf]
    assert eps == [(EP_OUT, usb.util.ENDPOINT_TYPE_BULK), (EP_IN, usb.util.ENDPOINT_TYPE_BULK)]
    assert usb.core.find(idVendor=0xDEAD, backend=backend) is None
    str(dev)  # pyusb's full descriptor dump runs through the backend


def test_bulk_transfers_carry_wire_frames_and_need_configuration():
    backend = LoopbackBackend(capture=True)
    dev = usb.core.find(idVendor=LOOPBACK_VID, idProduct=LOOPBACK_PID, backend=backend)
    link = w.Link()
    with pytest.raises(usb.core.USBError):
        dev.write(EP_OUT, link.send(w.HELLO, w.HELLO_STRUCT.pack(1, 0)))   # not configured yet
    dev.set_configuration()
    assert dev.get_active_configuration().bConfigurationValue == 1
    usb.util.claim_interface(dev, 0)
    link.reset()
    frame = link.send(w.HELLO, w.HELLO_STRUCT.pack(1, 0))
    assert dev.write(EP_OUT, frame) == len(frame)
    data = dev.read(EP_IN, 4096)
    frames, _ = link.receive(bytes(data))
    info = w.decode_hello_reply(frames[0].payload)
    assert info.serial == "LOOPBACK-0001" and info.profile.channels == 8
    with pytest.raises(usb.core.USBTimeoutError):
        dev.read(EP_IN, 64, timeout=1)   # nothing more to read
    # standard control requests go through ctrl_transfer
    assert dev.ctrl_transfer(0x80, 0x08, 0, 0, 1)[0] == 1          # GET_CONFIGURATION
    assert bytes(dev.ctrl_transfer(0x80, 0x00, 0, 0, 2)) == b"\x00\x00"
    usb.util.dispose_resources(dev)
    assert backend.transfers["control"] >= 2 and backend.transfers["bulk_out"] >= 1


def test_open_device_usb_with_loopback_backend():
    backend = LoopbackBackend(capture=True)
    dev = stimscript.open_device("usb", backend=backend)
    assert isinstance(dev, UsbDriver) and dev.emulator is backend.emulator
    assert dev.capabilities().queue_pulses == 4096 and dev.serial == "LOOPBACK-0001"
    s = nmes_schedule(channels=3, seconds=4, on_s=4, off_s=0, ramp_s=1)
    rec = stimscript.run(s, device=dev, record=False)
    assert rec.end_reason == "completed"
    assert np.array_equal(dev.emulator.output, s.pulses)
    assert backend.transfers["bulk_out"] > 10 and backend.transfers["bulk_in"] > 10
    dev.close()


def test_serial_matching():
    backend = LoopbackBackend(emulator=Emulator(capture=True, serial="SN-42"))
    dev = UsbDriver(backend=backend, serial="SN-42")
    dev.open()
    assert dev.serial == "SN-42"
    dev.close()
    with pytest.raises(DeviceNotFound, match="serial 'SN-43'"):
        UsbDriver(backend=LoopbackBackend(emulator=Emulator(serial="SN-42")), serial="SN-43").open()


def test_no_device_is_a_helpful_device_not_found():
    with pytest.raises(DeviceNotFound, match="1209:0002"):
        UsbDriver(backend=LoopbackBackend(), pid=0x0002).open()
    # the default libusb backend on a machine without the stimulator (or without USB at all)
    with pytest.raises(DeviceNotFound):
        stimscript.open_device("usb", vid=0x1209, pid=0x000F)


def test_unplugging_raises_device_disconnected():
    backend = LoopbackBackend(capture=True)
    dev = stimscript.open_device("usb", backend=backend)
    backend.emulator.disconnected = True
    with pytest.raises(DeviceDisconnected):
        dev.keepalive()
    assert list(usb.core.find(find_all=True, backend=backend)) == []
    with pytest.raises(usb.core.USBError):
        backend.open_device(None)


def test_emulator_attribute_only_for_emulated_devices():
    dev = UsbDriver()
    with pytest.raises(AttributeError):
        dev.emulator
