"""S017: a session must fit the device's encodable space (stimscript/profile.py), checked before it runs.

A pulse shape with more phases than the device's command can carry, a shape table larger than its upload
message, more distinct shapes than it can index, or a relative phase amplitude its fixed-point field cannot
hold would otherwise pass ``check`` and fail while the session is being sent. Each finding points at the
`pulse` (or `with pulse`) that introduces the shape.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from ..profile import DeviceProfile
from ..spans import Span
from ..units import format_number
from .model import ResolvedSession

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


def _shape_span(resolved: ResolvedSession, shape) -> Optional[Span]:
    for use in resolved.uses:
        if use.shape == shape:
            span = use.spans.get("pulse") or use.spans.get("line")
            if span is not None:
                return span
    return resolved.session_span


@lru_cache(maxsize=1024)
def _first_unencodable_phase(shape, max_relative_ppm: int) -> Optional[int]:
    """The first phase whose relative amplitude the fixed-point field cannot hold (memoised per shape: every
    week of a plan checks the same shapes)."""
    for i, (_, rel) in enumerate(shape.phases):
        r = Fraction(repr(rel)) if isinstance(rel, float) else Fraction(rel)
        if abs(r) * 10**6 > max_relative_ppm:
            return i
    return None


def encodable_findings(out, resolved: ResolvedSession, profile: DeviceProfile) -> None:
    """Add S017 findings to ``out`` (a safety collector) for what ``profile`` cannot encode."""
    dev = f"device `{profile.name}`"
    shapes = resolved.shapes
    if len(shapes) > profile.max_shapes:
        out.add("S017", f"the session uses {len(shapes)} distinct pulse shapes; {dev} holds at most "
                        f"{profile.max_shapes}", _shape_span(resolved, shapes[profile.max_shapes]),
                hint="use fewer distinct pulses (each `with pulse` override and shape param value is one)")
    total = 0
    for shape in shapes:
        n = len(shape.phases)
        total += profile.shape_header_bytes + profile.phase_bytes * n
        if n > profile.max_phases_per_shape:
            out.add("S017", f"the {shape.kind or 'custom'} pulse has {n} phases; {dev} encodes at most "
                            f"{profile.max_phases_per_shape} phases per pulse shape",
                    _shape_span(resolved, shape),
                    hint="shorten the burst (`for`), lower its carrier, or split the custom shape")
        i = _first_unencodable_phase(shape, profile.max_relative_ppm)
        if i is not None:
            rel = shape.phases[i][1]
            out.add("S017", f"phase {i + 1} of the pulse has relative amplitude {rel}; {dev} encodes at most "
                            f"±{format_number(Fraction(profile.max_relative_ppm, 10**6))}",
                    _shape_span(resolved, shape), hint="scale the shape so its phases stay near ±1")
    if total > profile.shape_table_bytes and not any(len(s.phases) > profile.max_phases_per_shape for s in shapes):
        big = max(shapes, key=lambda s: len(s.phases))
        out.add("S017", f"the session's pulse shapes need {total} bytes to upload; {dev} takes at most "
                        f"{profile.shape_table_bytes} bytes of shapes", _shape_span(resolved, big),
                hint="use fewer or shorter pulse shapes (bursts and custom shapes with many phases cost most)")
