"""Round half to even, exactly: the one definition every stage uses for µs and µA.

``round(num / den)`` with ties to the even neighbour, on Python ints (exact at any size) or on integer numpy
arrays (exact while the products fit int64; the callers bound them). The schedule's slot times and amplitudes,
the delivered-pulse checks, the emulators' intensity scaling and the record rebuild all round through here, so
they cannot disagree by one µs or µA. A contract module: it imports nothing (arrays are used through their
operators only).
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



def round_div(num: int, den: int) -> int:
    """round(num / den), half to even, exact (den > 0)."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2 == 1):
        q += 1
    return q


def round_div_array(num: Any, den: Any) -> Any:
    """:func:`round_div` element-wise on an integer numpy array (``den`` > 0, a scalar or an array)."""
    q = num // den
    r = num - q * den
    twice = 2 * r
    return q + ((twice > den) | ((twice == den) & ((q & 1) == 1)))
