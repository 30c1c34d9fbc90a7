"""Did-you-mean: the one way every stage finds the names closest to a misspelt one.

A contract module (docs/architecture.md): the parser (units), the checker (params, channels, cycles, keys),
the atlas (sites) and the driver registry (device names) all suggest through here, so a hint reads and ranks
the same everywhere: a name equal but for case first, then difflib's closest (ratio at least 0.6), best first.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional

#: how alike two names must be (difflib's ratio) to be suggested
CUTOFF = 0.6


def close_matches(word: str, candidates: Iterable[str], n: int = 1) -> list[str]:
    """Up to ``n`` candidates close to ``word``, best first ([] when none is close)."""
    if n <= 0:
        return []
    import difflib   # here, not at module level: only a misspelt name pays for it (start-up of `check`)

    names = list(candidates)
    folded = {c.lower(): c for c in names}
    same = folded.get(word.lower())
    found = [same] if same is not None else []
    found += [c for c in difflib.get_close_matches(word, names, n=n, cutoff=CUTOFF) if c not in found]
    return found[:n]


def did_you_mean(word: str, candidates: Iterable[str], n: int = 1) -> Optional[str]:
    """The hint "did you mean `x`?" (or "`x` or `y`" for ``n`` > 1), or None when nothing is close."""
    found = close_matches(word, candidates, n)
    if not found:
        return None
    return "did you mean " + " or ".join(f"`{f}`" for f in found) + "?"
