"""Type stub of the Cython twin (ext/_resolve.pyx) of compiler/lowering.py ``place_trains``, ``replay_uses`` and
``leaf_trains``.

Both twins append the same objects in the same order for every input; mypy reads this stub because it cannot
read the compiled module.
"""
from typing import Callable, Sequence

__all__ = ["leaf_trains", "place_trains", "replay_uses"]

def place_trains(block_trains: tuple, block_uses: tuple, shift: int, amp_nd: Sequence[tuple[int, int]],
                 out: list) -> None:
    """Same as ``compiler.lowering.place_trains``."""

def replay_uses(rows: tuple, chans: dict, src_vals: dict, uses: list, amp_nd: list) -> None:
    """Same as ``compiler.lowering.replay_uses``."""

def leaf_trains(placements: tuple, start: int, amplitudes: Sequence, periods: dict, period_of: Callable) -> tuple:
    """Same as ``compiler.lowering.leaf_trains``."""
