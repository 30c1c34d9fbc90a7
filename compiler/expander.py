"""Selects the schedule expander: the Cython twin when built, else the pure-Python reference.

``STIMSCRIPT_NO_EXTENSIONS=1`` forces the reference; ``STIMSCRIPT_REQUIRE_EXTENSIONS=1`` turns a missing
extension into an ImportError (CI sets it so a broken build cannot pass silently). Both twins expose
``expand(trains, t0, t1) -> ndarray`` and ``count(trains, t0, t1) -> int``.
"""
from __future__ import annotations

import os

from . import expand_py

_no_ext = os.environ.get("STIMSCRIPT_NO_EXTENSIONS", "") not in ("", "0")
_require_ext = os.environ.get("STIMSCRIPT_REQUIRE_EXTENSIONS", "") not in ("", "0")

impl = expand_py
USING_EXTENSION = False
if not _no_ext:
    try:
        from ..ext import _expand as impl  # type: ignore[no-redef]

        USING_EXTENSION = True
    except ImportError:
        if _require_ext:
            raise
        impl = expand_py

expand = impl.expand
count = impl.count
