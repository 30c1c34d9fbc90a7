"""Type stub of the Cython twin (ext/_resolve.pyx) of compiler/lowering.py ``place_trains``, ``replay_uses``,
``leaf_trains``, ``leaf_lines`` and ``move_segments``.

Both twins append the same objects in the same order for every input; mypy reads this stub because it cannot
read the compiled module.
"""
from typing import Any, Callable, Optional, Sequence

__all__ = ["leaf_lines", "leaf_trains", "move_segments", "place_trains", "replay_uses"]

def place_trains(block_trains: tuple, block_uses: tuple, shift: int, amp_nd: Sequence[tuple[int, int]],
                 out: list) -> None:
    """Same as ``compiler.lowering.place_trains``."""

def replay_uses(rows: tuple, chans: dict, src_vals: dict, uses: list, amp_nd: list) -> None:
    """Same as ``compiler.lowering.replay_uses``."""

def leaf_trains(placements: tuple, start: int, amplitudes: Sequence, periods: dict, period_of: Callable) -> tuple:
    """Same as ``compiler.lowering.leaf_trains``."""

def leaf_lines(lines: tuple, ctx: Any, cycle_nodes: dict, block_index: int, count: Optional[int],
               length: Optional[int], overrides: Callable, problem: Callable) -> tuple[int, list, list]:
    """Same as ``compiler.lowering.leaf_lines``."""

def move_segments(segments: tuple, shift: int, out: list) -> None:
    """Same as ``compiler.lowering.move_segments``."""
