"""The serial link (pyserial) and a pseudo-terminal that serves an emulated device on it.

ScienceMode devices are USB serial ports: 3 000 000 baud, 8 data bits, no parity, 2 stop bits, RTS/CTS.
:class:`SerialLink` opens one with pyserial and never blocks: ``read()`` returns what has arrived.
:class:`PtyServer` creates a new pseudo-terminal and runs a byte-level emulator on its master side in a
thread, so a driver talks to it through a real serial port path with pyserial's own code.
"""
from __future__ import annotations

import os
import select
import threading

from ...errors import DeviceNotFound
from ..base import DeviceDisconnected

BAUDRATE = 3_000_000


class SerialLink:
    """A non-blocking byte pipe over pyserial."""

    def __init__(self, port: str, baudrate: int = BAUDRATE):
        import serial

        self.port = port
        try:
            self.serial = serial.Serial(port, baudrate=baudrate, bytesize=serial.EIGHTBITS,
                                        parity=serial.PARITY_NONE, stopbits=serial.STOPBITS_TWO, rtscts=True,
                                        timeout=0, write_timeout=1.0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceNotFound(f"cannot open serial port {port}: {exc}") from None

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(f"serial port {self.port}: {exc}") from None

    def read(self) -> bytes:
        import serial

        try:
            n = self.serial.in_waiting
            return self.serial.read(n) if n else b""
        except (serial.SerialException, OSError, TypeError) as exc:
            raise DeviceDisconnected(f"serial port {self.port}: {exc}") from None

    def wait_readable(self, timeout_s: float) -> None:
        """Block until bytes arrive or ``timeout_s`` passes (used only while waiting for an answer)."""
        try:
            select.select([self.serial.fileno()], [], [], timeout_s)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        try:
            self.serial.close()
        except Exception:
            pass


class PtyServer:
    """Serve ``emulator`` (anything with ``host_write``/``host_read``) on a new pseudo-terminal.

    ``path`` is the terminal a host opens (e.g. /dev/pts/7). ``stop()`` ends the thread; ``unplug()``
    closes the terminal under the host's feet (a disconnected cable)."""

    def __init__(self, emulator, poll_s: float = 0.0005):
        import tty

        self.emulator = emulator
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self._slave)
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"sciencemode-pty {self.path}", daemon=True)
        self.error: BaseException | None = None
        self.bytes_out = 0

    def start(self) -> "PtyServer":
        self._thread.start()
        return self

    def _serve(self) -> None:
        from .emulator import EmulatorDisconnected

        try:
            while not self._stop.is_set():
                r, _, _ = select.select([self.master], [], [], self.poll_s)
                if r:
                    try:
                        data = os.read(self.master, 65536)
                    except OSError:
                        data = b""
                    if data:
                        self.emulator.host_write(data)
                out = self.emulator.host_read()
                if out:
                    os.write(self.master, out)
                    self.bytes_out += len(out)
        except EmulatorDisconnected:
            self._close_fds()
        except BaseException as exc:   # kept for the owner to see; the host sees a silent device
            self.error = exc

    def _close_fds(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self._slave = -1

    def unplug(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._close_fds()

    def stop(self) -> None:
        self.unplug()


def serial_ports() -> list[tuple[str, str]]:
    """(device path, description) of serial ports that could be a ScienceMode device (USB serial)."""
    from serial.tools import list_ports
    out = []
    for p in list_ports.comports():
        if p.vid is None:
            continue
        desc = p.description or ""
        if p.manufacturer:
            desc = f"{p.manufacturer} {desc}".strip()
        out.append((p.device, f"{desc} [{p.vid:04X}:{p.pid:04X}]"))
    return out
