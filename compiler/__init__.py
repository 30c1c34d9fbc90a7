"""stimscript.compiler: checker (names, units, limits, safety) and lowering to a Schedule.

``load(path, device=None)`` / ``loads(text, name="<string>", device=None)`` parse and check a protocol and
return a :class:`~stimscript.compiler.protocol.CheckedProtocol` (imported lazily so that light users of
the sub-package, e.g. the atlas or the expander, do not pay for the checker).
"""
from __future__ import annotations


def load(path, device=None):
    """Parse and check a ``.stim`` file; returns a CheckedProtocol (raises ProtocolError)."""
    from .protocol import load as _load

    return _load(path, device=device)


def loads(text, name: str = "<string>", device=None):
    """Parse and check protocol text; returns a CheckedProtocol (raises ProtocolError)."""
    from .protocol import loads as _loads

    return _loads(text, name=name, device=device)


def __getattr__(name: str):
    if name == "CheckedProtocol":
        from .protocol import CheckedProtocol

        return CheckedProtocol
    raise AttributeError(f"module 'stimscript.compiler' has no attribute {name!r}")
