"""ScienceMode commands and answers: numbers, payload layouts, result codes, pulse points.

Payload layouts (big-endian; the answer to command N is command N + 1 and starts with a result byte):

general
  50 get_version         -> 51: result, firmware major minor revision, ScienceMode major minor revision
  52 get_device_id       -> 53: result, 10 ASCII bytes
  54 get_battery_status  -> 55: result, level %, voltage mV (u16)
  62 get_stim_status     -> 63: result, stim status (0 none, 1 low level, 2 mid level initialised,
                                3 mid level running), high-voltage level (1 off, 2 30 V .. 6 150 V)
  66 general_error (from the device): result;   67 unknown_cmd (from the device): result
low level (the host times every pulse)
  0 ll_init: ``high_voltage << 1``             -> 1: result
  2 ll_channel_config: ``execute << 7 | (channel & 3) << 5 | connector << 4 | (points - 1)``, points
                                               -> 3 (after the pulse ran): result, ``connector << 4 | channel``,
                                                  measurement type, measured value (u16)
  4 ll_stop                                    -> 5: result
mid level (the device generates the rate)
  30 ml_init: stop-all-on-error flag           -> 31: result
  32 ml_update: enable bits (bit c = channel c, 0-based), then per enabled channel in order:
     ``(points - 1) << 4 | ramp``, period (u16: ``code << 1 | acc``, code = ms x 2, or x 4 when acc = 1),
     the points                                -> 33: result
  34 ml_stop                                   -> 35: result
  36 ml_get_current_data: selector (2: four channels' electrode bits, 4: every channel's state)
                                               -> 37: result, selector, then for 2: ``running << 4 | error bits``;
                                                  for 4: running bits (u8), then one state nibble per
                                                  channel, low nibble first (0 ok, 1 electrode, 2 pulse
                                                  timeout, 3 pulse low current)

A point is 32 bits: duration (12 bits, µs), current (10 bits, ``2 x mA + 300``, so 0.5 mA steps from
-150 to +150 mA), interpolation (bits 6..5; 0 = hold), the other bits 0.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ...errors import DeviceFault, DriverError, ProtocolMismatch

# ---- command numbers ------------------------------------------------------------------------------------
LL_INIT, LL_INIT_ACK = 0, 1
LL_CHANNEL_CONFIG, LL_CHANNEL_CONFIG_ACK = 2, 3
LL_STOP, LL_STOP_ACK = 4, 5
ML_INIT, ML_INIT_ACK = 30, 31
ML_UPDATE, ML_UPDATE_ACK = 32, 33
ML_STOP, ML_STOP_ACK = 34, 35
ML_GET_CURRENT_DATA, ML_GET_CURRENT_DATA_ACK = 36, 37
GET_VERSION, GET_VERSION_ACK = 50, 51
GET_DEVICE_ID, GET_DEVICE_ID_ACK = 52, 53
GET_BATTERY, GET_BATTERY_ACK = 54, 55
RESET, RESET_ACK = 58, 59
GET_STIM_STATUS, GET_STIM_STATUS_ACK = 62, 63
GENERAL_ERROR = 66
UNKNOWN_CMD = 67

COMMAND_NAMES = {
    LL_INIT: "Ll_init", LL_INIT_ACK: "Ll_init_ack", LL_CHANNEL_CONFIG: "Ll_channel_config",
    LL_CHANNEL_CONFIG_ACK: "Ll_channel_config_ack", LL_STOP: "Ll_stop", LL_STOP_ACK: "Ll_stop_ack",
    ML_INIT: "Ml_init", ML_INIT_ACK: "Ml_init_ack", ML_UPDATE: "Ml_update", ML_UPDATE_ACK: "Ml_update_ack",
    ML_STOP: "Ml_stop", ML_STOP_ACK: "Ml_stop_ack", ML_GET_CURRENT_DATA: "Ml_get_current_data",
    ML_GET_CURRENT_DATA_ACK: "Ml_get_current_data_ack", GET_VERSION: "Get_version_main",
    GET_VERSION_ACK: "Get_version_main_ack", GET_DEVICE_ID: "Get_device_id", GET_DEVICE_ID_ACK: "Get_device_id_ack",
    GET_BATTERY: "Get_battery_status", GET_BATTERY_ACK: "Get_battery_status_ack", RESET: "Reset",
    RESET_ACK: "Reset_ack", GET_STIM_STATUS: "Get_stim_status", GET_STIM_STATUS_ACK: "Get_stim_status_ack",
    GENERAL_ERROR: "General_error", UNKNOWN_CMD: "Unknown_cmd",
}

# ---- result codes ---------------------------------------------------------------------------------------
OK = 0
TRANSFER_ERROR = 1
PARAMETER_ERROR = 2
PROTOCOL_ERROR = 3
STIMULATION_TIMEOUT = 4
NOT_INITIALISED = 7
ELECTRODE_ERROR = 10
UNKNOWN_COMMAND = 11
PULSE_TIMEOUT = 16
PULSE_LOW_CURRENT = 28

RESULT_NAMES = {
    OK: "ok", TRANSFER_ERROR: "transfer error (length or checksum)", PARAMETER_ERROR: "parameter error",
    PROTOCOL_ERROR: "protocol error", STIMULATION_TIMEOUT: "stimulation timeout",
    NOT_INITIALISED: "not initialised (or another level is)", ELECTRODE_ERROR: "electrode error",
    UNKNOWN_COMMAND: "unknown command", PULSE_TIMEOUT: "pulse timeout (period too short for the pulse)",
    PULSE_LOW_CURRENT: "pulse low current (the voltage cannot drive the current)",
}
#: results that mean the device stopped (part of) its output: DeviceFault; the others are DriverError
FAULT_RESULTS = frozenset({STIMULATION_TIMEOUT, ELECTRODE_ERROR, PULSE_TIMEOUT, PULSE_LOW_CURRENT})
#: our neutral fault kinds (stimscript.drivers.events) for results and channel states
FAULT_KIND = {ELECTRODE_ERROR: "electrode", PULSE_TIMEOUT: "bad_pulse", PULSE_LOW_CURRENT: "over_limit",
              STIMULATION_TIMEOUT: "watchdog"}

# channel states of ml_get_current_data (selector 4)
CHANNEL_OK, CHANNEL_ELECTRODE, CHANNEL_PULSE_TIMEOUT, CHANNEL_LOW_CURRENT = 0, 1, 2, 3
CHANNEL_STATE_RESULT = {CHANNEL_ELECTRODE: ELECTRODE_ERROR, CHANNEL_PULSE_TIMEOUT: PULSE_TIMEOUT,
                        CHANNEL_LOW_CURRENT: PULSE_LOW_CURRENT}

SELECT_STIMULATION = 2     # RehaMove3: running bit + four electrode bits
SELECT_CHANNELS = 4        # P24: running bits + a state nibble per channel

STIM_NONE, STIM_LOW_LEVEL, STIM_MID_INIT, STIM_MID_RUNNING = 0, 1, 2, 3

MAX_POINTS = 16
MAX_RAMP = 15
MAX_POINT_US = 4095
MAX_CURRENT_HALF_MA = 300      # ±150 mA in the point format
LIBRARY_MAX_HALF_MA = 260      # ±130 mA: what the vendor library and the devices accept


def result_error(result: int, what: str, channel: int | None = None) -> DriverError:
    """The exception for a non-zero result code (DeviceFault when output was affected)."""
    name = RESULT_NAMES.get(result, f"result code {result}")
    where = f" on channel {channel}" if channel else ""
    text = f"the device answered {what} with {name}{where} (code {result})"
    if result == TRANSFER_ERROR:
        return ProtocolMismatch(text + ": the frame was damaged on the way")
    cls = DeviceFault if result in FAULT_RESULTS else DriverError
    return cls(text)


# ---- points ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One point of a pulse: ``duration_us`` 0..4095 and ``current_half_ma`` (current in 0.5 mA units,
    -300..300, i.e. -150..150 mA)."""

    duration_us: int
    current_half_ma: int
    interpolation: int = 0

    @property
    def current_ua(self) -> int:
        return self.current_half_ma * 500

    def encode(self) -> bytes:
        if not 0 <= self.duration_us <= MAX_POINT_US:
            raise ValueError(f"a point of {self.duration_us} µs (0..{MAX_POINT_US})")
        if not -MAX_CURRENT_HALF_MA <= self.current_half_ma <= MAX_CURRENT_HALF_MA:
            raise ValueError(f"a point of {self.current_half_ma / 2:g} mA (-150..150)")
        code = self.current_half_ma + MAX_CURRENT_HALF_MA
        return struct.pack(">I", (self.duration_us << 20) | (code << 10) | ((self.interpolation & 3) << 5))

    @classmethod
    def decode(cls, raw: bytes) -> "Point":
        (word,) = struct.unpack(">I", raw)
        return cls(word >> 20, ((word >> 10) & 0x3FF) - MAX_CURRENT_HALF_MA, (word >> 5) & 3)


def encode_points(points) -> bytes:
    return b"".join(p.encode() for p in points)


def decode_points(data: bytes, n: int) -> tuple[Point, ...]:
    if len(data) < 4 * n:
        raise ValueError(f"{n} points need {4 * n} bytes, {len(data)} came")
    return tuple(Point.decode(data[4 * i:4 * i + 4]) for i in range(n))


# ---- mid level ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MlChannel:
    """One enabled channel of an ml_update: period in device units (``period_code``: 0.5 ms, or 0.25 ms
    when ``fine``), ``ramp`` pulses of rising current on enabling, and the pulse's points."""

    period_code: int
    points: tuple[Point, ...]
    ramp: int = 0
    fine: bool = False

    @property
    def period_us(self) -> int:
        return self.period_code * (250 if self.fine else 500)


def encode_ml_update(channels: dict[int, MlChannel]) -> bytes:
    """``channels``: 0-based channel -> MlChannel (absent: off)."""
    bits = 0
    body = bytearray()
    for ch in sorted(channels):
        if not 0 <= ch <= 7:
            raise ValueError(f"channel index {ch} outside 0..7")
        bits |= 1 << ch
        c = channels[ch]
        if not 1 <= len(c.points) <= MAX_POINTS:
            raise ValueError(f"{len(c.points)} points (1..{MAX_POINTS})")
        if not 0 <= c.ramp <= MAX_RAMP:
            raise ValueError(f"ramp {c.ramp} (0..{MAX_RAMP})")
        if not 1 <= c.period_code <= 0x7FFF:
            raise ValueError(f"period code {c.period_code}")
        body.append(((len(c.points) - 1) << 4) | c.ramp)
        body += struct.pack(">H", (c.period_code << 1) | int(c.fine))
        body += encode_points(c.points)
    return bytes((bits,)) + bytes(body)


def decode_ml_update(data: bytes) -> dict[int, MlChannel]:
    if not data:
        raise ValueError("an empty ml_update")
    bits, i, out = data[0], 1, {}
    for ch in range(8):
        if not bits & (1 << ch):
            continue
        if i + 3 > len(data):
            raise ValueError(f"ml_update ends inside channel {ch}'s settings")
        n = (data[i] >> 4) + 1
        ramp = data[i] & 0x0F
        (period,) = struct.unpack(">H", data[i + 1:i + 3])
        i += 3
        pts = decode_points(data[i:], n)
        i += 4 * n
        out[ch] = MlChannel(period >> 1, pts, ramp, bool(period & 1))
    if i != len(data):
        raise ValueError(f"ml_update has {len(data) - i} byte(s) too many")
    return out


@dataclass(frozen=True)
class CurrentData:
    """The answer to ml_get_current_data: stimulation running per channel and a state per channel."""

    result: int
    selector: int
    running: tuple[bool, ...]
    states: tuple[int, ...]


def encode_current_data(result: int, selector: int, running, states) -> bytes:
    if selector == SELECT_STIMULATION:
        err = 0
        for i, s in enumerate(states[:4]):
            if s == CHANNEL_ELECTRODE:
                err |= 1 << i
        return bytes((result, selector, (int(any(running)) << 4) | err))
    bits = 0
    for i, r in enumerate(running):
        bits |= int(bool(r)) << i
    nibbles = bytearray()
    st = list(states) + [0] * (8 - len(states))
    for i in range(0, 8, 2):
        nibbles.append((st[i] & 0x0F) | ((st[i + 1] & 0x0F) << 4))
    return bytes((result, selector, bits)) + bytes(nibbles)


def decode_current_data(data: bytes, channels: int) -> CurrentData:
    if len(data) < 2:
        raise ValueError("a current-data answer without result and selector")
    result, sel = data[0], data[1]
    if result != OK:
        return CurrentData(result, sel, (False,) * channels, (0,) * channels)
    if sel == SELECT_STIMULATION:
        if len(data) < 3:
            raise ValueError("a stimulation-data answer without its status byte")
        stimulating = bool(data[2] & 0x10)
        states = tuple(CHANNEL_ELECTRODE if data[2] & (1 << i) else CHANNEL_OK for i in range(4))
        return CurrentData(result, sel, (stimulating,) * channels, (states + (0,) * 8)[:channels])
    if sel == SELECT_CHANNELS:
        if len(data) < 7:
            raise ValueError("a channel-data answer needs 7 bytes")
        running = tuple(bool(data[2] & (1 << i)) for i in range(channels))
        nibbles = [data[3 + i // 2] for i in range(channels)]
        return CurrentData(result, sel, running,
                           tuple(b & 0x0F if i % 2 == 0 else b >> 4 for i, b in enumerate(nibbles)))
    raise ValueError(f"unknown current-data selector {sel}")


# ---- low level ------------------------------------------------------------------------------------------
def encode_ll_init(high_voltage: int = 0) -> bytes:
    return bytes((((high_voltage & 0x07) << 1),))


def encode_ll_channel_config(channel: int, points, execute: bool = True) -> bytes:
    """``channel`` 0-based (0..7: bits 6..5 the channel of a connector, bit 4 the connector)."""
    pts = tuple(points)
    if not 1 <= len(pts) <= MAX_POINTS:
        raise ValueError(f"{len(pts)} points (1..{MAX_POINTS})")
    head = (int(execute) << 7) | ((channel & 3) << 5) | (((channel >> 2) & 1) << 4) | (len(pts) - 1)
    return bytes((head,)) + encode_points(pts)


def decode_ll_channel_config(data: bytes) -> tuple[int, bool, tuple[Point, ...]]:
    if not data:
        raise ValueError("an empty ll_channel_config")
    head = data[0]
    n = (head & 0x0F) + 1
    channel = ((head >> 5) & 3) | (((head >> 4) & 1) << 2)
    pts = decode_points(data[1:], n)
    if len(data) != 1 + 4 * n:
        raise ValueError("ll_channel_config has the wrong length for its points")
    return channel, bool(head & 0x80), pts


def encode_ll_config_ack(result: int, channel: int) -> bytes:
    return bytes((result, ((channel >> 2) << 4) | (channel & 3), 0)) + struct.pack(">H", 0)


def decode_ll_config_ack(data: bytes) -> tuple[int, int]:
    if len(data) < 2:
        raise ValueError("an ll_channel_config answer needs result and channel")
    return data[0], ((data[1] >> 4) << 2) | (data[1] & 0x0F & 3)


# ---- general --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceInfo:
    """What the general commands tell about a device."""

    device_id: str = ""
    firmware: tuple[int, int, int] = (0, 0, 0)
    sciencemode: tuple[int, int, int] = (0, 0, 0)
    battery_percent: int = 0
    battery_mv: int = 0
    stim_status: int = 0
    high_voltage: int = 0
    extra: dict = field(default_factory=dict, compare=False)


def encode_version(result: int, firmware, sciencemode) -> bytes:
    return bytes((result, *firmware, *sciencemode))


def decode_version(data: bytes) -> tuple[int, tuple, tuple]:
    if len(data) < 7:
        raise ValueError("a version answer needs 7 bytes")
    return data[0], tuple(data[1:4]), tuple(data[4:7])


def encode_device_id(result: int, device_id: str) -> bytes:
    return bytes((result,)) + device_id.encode("ascii", "replace")[:10].ljust(10, b"\0")


def decode_device_id(data: bytes) -> tuple[int, str]:
    if len(data) < 11:
        raise ValueError("a device-id answer needs 11 bytes")
    return data[0], data[1:11].rstrip(b"\0").decode("ascii", "replace")


def encode_battery(result: int, percent: int, mv: int) -> bytes:
    return bytes((result, percent)) + struct.pack(">H", mv)


def decode_battery(data: bytes) -> tuple[int, int, int]:
    if len(data) < 4:
        raise ValueError("a battery answer needs 4 bytes")
    return data[0], data[1], struct.unpack(">H", data[2:4])[0]


def encode_stim_status(result: int, status: int, high_voltage: int) -> bytes:
    return bytes((result, status, high_voltage))


def decode_stim_status(data: bytes) -> tuple[int, int, int]:
    if len(data) < 3:
        raise ValueError("a stim-status answer needs 3 bytes")
    return data[0], data[1], data[2]


def describe(command: int, data: bytes) -> str:
    """A one-line human reading of a frame (for --dry-run and logs)."""
    name = COMMAND_NAMES.get(command, f"command {command}")
    try:
        if command == ML_UPDATE:
            chans = decode_ml_update(data)
            parts = []
            for ch, c in chans.items():
                pts = " ".join(f"{p.duration_us}µs@{p.current_half_ma / 2:+g}mA" for p in c.points)
                parts.append(f"ch{ch + 1} period {c.period_us / 1000:g} ms ramp {c.ramp} [{pts}]")
            return f"{name}: " + ("; ".join(parts) if parts else "all channels off")
        if command == LL_CHANNEL_CONFIG:
            ch, _execute, points = decode_ll_channel_config(data)
            return f"{name}: ch{ch + 1} " + " ".join(f"{p.duration_us}µs@{p.current_half_ma / 2:+g}mA" for p in points)
        if command == ML_GET_CURRENT_DATA and data:
            return f"{name}: selector {data[0]}"
    except ValueError:
        pass
    return name + (f": {data.hex(' ')}" if data else "")
