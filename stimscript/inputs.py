"""Reading a protocol file: regular files only, at most :data:`MAX_INPUT_BYTES`, never a hang.

A protocol is a small text file (the largest published protocol is a few kB; a 20,000-line generated one is
about 400 kB). Anything else given as a protocol — a directory, ``/dev/zero``, a FIFO that nobody writes,
a terminal, a multi-gigabyte file — is refused with a clear error before it is read, instead of filling
memory or blocking forever.
"""
from __future__ import annotations

import os
import stat

from .errors import StimscriptError

#: the largest protocol file accepted (1 MiB)
MAX_INPUT_BYTES = 1 << 20


class InputError(StimscriptError):
    """A protocol path that cannot be read as a protocol (not a regular file, too large, unreadable)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def display_path(path: str | bytes | os.PathLike) -> str:
    """``path`` as printable text: bytes that are not UTF-8 (a file name from another system) as ``\\xff``."""
    try:
        raw = os.fsencode(path)
    except (TypeError, ValueError):
        return str(path)
    return raw.decode("utf-8", "backslashreplace")


def read_input(path: str | bytes | os.PathLike, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); :class:`InputError` otherwise."""
    shown = display_path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"error: {shown}: no such file") from None
    except OSError as exc:
        raise InputError(f"error: {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"error: {shown}: is {_kind(st.st_mode)}; a protocol must be a regular file")
    if st.st_size > limit:
        raise InputError(f"error: {shown}: {st.st_size:,} bytes; a protocol file may have at most {limit:,} bytes "
                         f"({limit >> 20} MiB)")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"error: {shown}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)  # the file opened is the one checked (not swapped for a FIFO in between)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"error: {shown}: is {_kind(st.st_mode)}; a protocol must be a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InputError(f"error: {shown}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(f"error: {shown}: more than {limit:,} bytes; a protocol file may have at most "
                         f"{limit:,} bytes ({limit >> 20} MiB)")
    return b"".join(chunks)


def check_text_size(text: str | bytes, limit: int = MAX_INPUT_BYTES) -> None:
    """The same cap for protocol text given directly (``loads``)."""
    n = len(text.encode("utf-8", "surrogateescape")) if isinstance(text, str) else len(text)
    if n > limit:
        raise InputError(f"error: protocol text of {n:,} bytes; at most {limit:,} bytes ({limit >> 20} MiB) "
                         "are accepted")
