"""Type stub of the Cython twin (ext/_rules.pyx) of compiler/delivered.py ``session_facts`` (memo on).

The twin returns the same TrainFacts, field by field, for every input; mypy reads this stub because it cannot
read the compiled module.
"""
from typing import Any, Callable, Sequence

__all__ = ["session_facts"]

def session_facts(trains: Sequence[Any], weights: list, n_shapes: int, memo: dict, memo_max: int, cls: type,
                  timing: Callable[..., tuple], ref_facts: Callable[..., Any], zero: Any) -> list:
    """Same as ``compiler.delivered.session_facts`` with the memo on."""
