"""Type stub of the Cython schedule expander (ext/_expand.pyx), the twin of compiler/expand_py.py.

Both twins expose the same two functions with the same results, bit for bit; mypy reads this stub because it
cannot read the compiled module.
"""
from typing import Iterable

import numpy as np

from ..pulses import Train

__all__ = ["expand", "count"]

def count(trains: Iterable[Train], t0: int, t1: int) -> int:
    """Number of pulses with t0 <= t_us < t1 (same as ``expand_py.count``)."""

def expand(trains: Iterable[Train], t0: int, t1: int) -> np.ndarray:
    """All pulses with t0 <= t_us < t1, sorted by (t_us, channel), dtype PULSE_DTYPE (same as ``expand_py.expand``)."""
