"""Writing a file so that a reader finds the old file or the whole new one, never a part of it.

The content goes to a temporary file next to the target (same folder, so same file system) and is renamed
over the target with ``os.replace`` only when the writer's block completes; on an error or an interrupt the
temporary file is removed and the target is left as it was. Exports (``compiler/export.py``) and the parser's
table caches (``dsl/tables.py``) write through here.

Standard library only: setup.py loads this file by path, with ``dsl/tables.py``, to write the parser's tables
at build time.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def replacing(path: str | Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` when the ``with`` block completes (a hidden ``.NAME.*.part`` until then).

    ``mode``: the permission bits of the finished file (the temporary file is created 0600, as ``mkstemp``
    makes it; an export is an ordinary file others may read, so it passes 0o644). An ``OSError`` while
    creating the temporary file names ``path``, the file the caller asked for.
    """
    import tempfile

    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
