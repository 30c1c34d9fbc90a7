"""When a compiled twin (``ext/*.pyx``) replaces its pure-Python reference: the one place that reads the switches.

Every hot loop with a Cython twin keeps its pure-Python code as the reference. A selector module imports the
twin statically (so the layering check sees the dependency) and asks this module what to do::

    _twin = None
    if twins.wanted():
        try:
            from ..ext import _rules as _twin
        except ImportError as err:
            twins.missing(err)

``STIMSCRIPT_NO_EXTENSIONS=1`` forces the reference everywhere (CI runs the whole suite a second time so);
``STIMSCRIPT_REQUIRE_EXTENSIONS=1`` turns a twin that failed to build into an ImportError instead of a silent
fall-back to the slower reference (CI sets it on its first pass).
"""
from __future__ import annotations

import os


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def wanted() -> bool:
    """False when ``STIMSCRIPT_NO_EXTENSIONS`` asks for the pure-Python reference."""
    return not _flag("STIMSCRIPT_NO_EXTENSIONS")


def missing(err: ImportError) -> None:
    """A twin could not be imported: re-raise ``err`` when ``STIMSCRIPT_REQUIRE_EXTENSIONS`` is set, else return
    (the caller keeps its reference)."""
    if _flag("STIMSCRIPT_REQUIRE_EXTENSIONS"):
        raise err
