"""The motor-point atlas shipped with the package (its entries: ``stimscript/compiler/atlas_data.py``).

Each entry names one stimulation site (a muscle, a muscle group or a nerve point), gives a landmark-based
description of where its motor point(s) lie and where to put the electrodes, a suggested electrode size and
the published source of the description. Sides (``left``/``right``) are not part of the names: a channel
says ``site vastus_medialis right``.

    >>> from stimscript.compiler import atlas
    >>> atlas.lookup("vastus_medialis").region
    'thigh'
    >>> atlas.suggest("vastus_medial")[0]
    'vastus_medialis'
"""
from __future__ import annotations

from functools import lru_cache

from ..suggest import close_matches
from ..valueclass import dataclass

__all__ = ["AtlasEntry", "load_atlas", "lookup", "names", "suggest"]


@dataclass(frozen=True)
class AtlasEntry:
    """One site of the atlas."""

    name: str
    region: str
    muscle: str
    landmark: str
    typical_electrode: str
    source: str
    motor_points: int | None = None  # number of distinct motor points described, where the source gives it

    def __str__(self) -> str:
        return f"{self.name} ({self.muscle}, {self.region})"


@lru_cache(maxsize=1)
def load_atlas() -> dict[str, AtlasEntry]:
    """The atlas, read once from :mod:`.atlas_data`; returns ``{name: AtlasEntry}`` in atlas order."""
    from .atlas_data import ENTRIES   # here: only a protocol that names a site pays for it

    entries: dict[str, AtlasEntry] = {}
    for raw in ENTRIES:
        entry = AtlasEntry(
            name=raw["name"],
            region=raw["region"],
            muscle=raw["muscle"],
            landmark=raw["landmark"],
            typical_electrode=raw["typical_electrode"],
            source=raw["source"],
            motor_points=raw.get("motor_points"),
        )
        if entry.name in entries:
            raise ValueError(f"duplicate atlas entry {entry.name!r}")
        entries[entry.name] = entry
    return entries


def lookup(name: str) -> AtlasEntry | None:
    """The entry called ``name`` (exact, then case-insensitive), or None."""
    atlas = load_atlas()
    entry = atlas.get(name)
    if entry is None:
        entry = atlas.get(name.lower())
    return entry


def names() -> list[str]:
    """All site names, in atlas order."""
    return list(load_atlas())


def suggest(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` site names close to ``name`` (did-you-mean; case-insensitive), best first."""
    return close_matches(name.lower(), names(), n)
