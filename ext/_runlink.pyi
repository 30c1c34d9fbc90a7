"""Type stub of the compiled frame kernels (ext/_runlink.pyx), the twin of the pure-Python code in drivers/link.py."""
from typing import Any, Callable

def crc16(data: bytes, crc: int = 0xFFFF) -> int: ...

def encode_frame(mtype: int, seq: int, ack: int, payload: bytes = b"",
                 crc_long: Callable[[bytes, int], int] | None = None, long_bytes: int = 256) -> bytes: ...

def scan(buf: bytes, frame_type: Callable[[int, int, int, bytes], Any],
         crc_long: Callable[[bytes, int], int] | None = None,
         long_bytes: int = 256) -> tuple[list[Any], int, int, int, int, int, int]: ...
