"""Type stub of the Cython twins (ext/_rules.pyx) of compiler/delivered.py ``session_facts`` (memo on) and of
``channel_spacing``'s scan, of compiler/overlap.py ``overlap_scan`` and of compiler/delivered_rules.py
``channel_onsets``.

The twins return what their references return, field by field, for every input; mypy reads this stub because
it cannot read the compiled module.
"""
from typing import Any, Callable, Optional, Sequence

__all__ = ["channel_onsets", "overlap_scan", "session_facts", "spacing_scan", "use_results"]

def session_facts(trains: Sequence[Any], weights: list, n_shapes: int, memo: dict, memo_max: int, cls: type,
                  timing: Callable[..., tuple], ref_facts: Callable[..., Any], zero: Any) -> list:
    """Same as ``compiler.delivered.session_facts`` with the memo on."""

def spacing_scan(facts: Sequence[Any], items: Optional[list], plan_interleaved: Callable[[list, list], int],
                 first_two: Callable[[tuple], tuple]) -> Optional[tuple[Optional[tuple], list, int]]:
    """The scan of ``compiler.delivered.channel_spacing``; None when a number does not fit the C bounds."""

def overlap_scan(trains: Sequence[Any], shape_durs: list, shared_source: bool) -> Optional[tuple[list, list]]:
    """Same as ``compiler.overlap.overlap_scan``; None when a number does not fit the C bounds."""

def channel_onsets(facts: Sequence[Any], threshold: Any) -> Optional[list[tuple]]:
    """Same as ``compiler.delivered_rules.channel_onsets`` from the session's facts; None when the threshold is not
    a C integer or a number does not fit the C bounds."""

def use_results(uses: Sequence[Any], local: dict, groups: dict, ck: Optional[int], ctx: Any,
                memo_use: Callable[..., tuple], no_findings: tuple) -> list[tuple[int, tuple]]:
    """Same as ``compiler.safety.use_results``."""
