"""Selects the schedule expander: the Cython twin when built, else the pure-Python reference.

``STIMSCRIPT_NO_EXTENSIONS=1`` forces the reference; ``STIMSCRIPT_REQUIRE_EXTENSIONS=1`` turns a missing
extension into an ImportError (CI sets it so a broken build cannot pass silently); :mod:`stimscript.twins` reads
both. Both twins expose ``expand(trains, t0, t1) -> ndarray`` and ``count(trains, t0, t1) -> int``.
"""
from __future__ import annotations

from .. import twins
from . import expand_py

impl = expand_py
USING_EXTENSION = False
if twins.wanted():
    try:
        from ..ext import _expand as impl  # type: ignore[no-redef]

        USING_EXTENSION = True
    except ImportError as err:
        twins.missing(err)
        impl = expand_py

expand = impl.expand
count = impl.count
