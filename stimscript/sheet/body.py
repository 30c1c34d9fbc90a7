"""A simple body outline (front and back) with the electrode sites marked, as inline SVG.

Each atlas site has a place on one of the two views; the subject's right is on the viewer's left in the front
view and on the viewer's right in the back view (as when facing the patient, then standing behind). The
outline is a schematic for orientation: the landmarks in the text say where the electrodes go.
"""
from __future__ import annotations

from typing import Iterable, Optional

#: view width and the centre line of each view in the SVG's coordinates
WIDTH, HEIGHT = 220, 230
CENTRE = {"front": 55, "back": 165}

#: atlas site -> (view, distance from the midline, height); 0 = top of the head, 215 = soles
SITES = {
    "vastus_medialis": ("front", 7, 142), "vastus_lateralis": ("front", 18, 128),
    "rectus_femoris": ("front", 12, 120), "quadriceps": ("front", 12, 128),
    "biceps_femoris": ("back", 16, 128), "semitendinosus": ("back", 8, 128), "semimembranosus": ("back", 9, 136),
    "hamstrings": ("back", 12, 128), "gluteus_maximus": ("back", 11, 98), "gluteus_medius": ("back", 17, 89),
    "tibialis_anterior": ("front", 13, 170), "peroneus_longus": ("front", 16, 166),
    "common_peroneal_nerve": ("front", 17, 155), "gastrocnemius_medialis": ("back", 9, 168),
    "gastrocnemius_lateralis": ("back", 15, 168), "soleus": ("back", 12, 184),
    "biceps_brachii": ("front", 29, 55), "triceps_brachii": ("back", 29, 55),
    "deltoid_anterior": ("front", 24, 35), "deltoid_middle": ("front", 28, 33),
    "deltoid_posterior": ("back", 24, 35), "supraspinatus": ("back", 14, 31),
    "extensor_carpi_radialis": ("back", 33, 82), "extensor_digitorum": ("back", 34, 90),
    "flexor_carpi_radialis": ("front", 33, 84), "wrist_extensors": ("back", 33, 86),
    "erector_spinae": ("back", 6, 76), "abdominals": ("front", 7, 72),
}


def marker_for(site: str, side: str) -> Optional[tuple]:
    """(view, x, y) of an atlas site on a side ('left', 'right', '' = both: the right one is returned)."""
    place = SITES.get(site)
    if place is None:
        return None
    view, dx, y = place
    right_sign = -1 if view == "front" else 1
    sign = -right_sign if side == "left" else right_sign
    return (view, CENTRE[view] + sign * dx, y)


def _limb(points: str, width: float) -> str:
    """A limb: a dark stroke under a light one, so the figure has an outline."""
    return (f"<polyline points='{points}' fill='none' stroke='#7d8a97' stroke-width='{width + 1.6}' "
            f"stroke-linecap='round' stroke-linejoin='round'/>"
            f"<polyline points='{points}' fill='none' stroke='#eef2f6' stroke-width='{width}' "
            f"stroke-linecap='round' stroke-linejoin='round'/>")


def _figure(cx: float) -> str:
    parts = []
    for s in (-1, 1):   # arms, legs (drawn before the torso so it covers their roots)
        parts.append(_limb(f"{cx + s * 20},{30} {cx + s * 28},{58} {cx + s * 33},{88} {cx + s * 35},{103}", 9))
        parts.append(_limb(f"{cx + s * 10},{100} {cx + s * 12},{145} {cx + s * 12},{195} {cx + s * 14},{210}", 14))
    torso = (f"<path d='M{cx - 19},{28} Q{cx},{22} {cx + 19},{28} L{cx + 17},{70} Q{cx + 21},{92} {cx + 19},{104} "
             f"L{cx - 19},{104} Q{cx - 21},{92} {cx - 17},{70} Z' fill='#eef2f6' stroke='#7d8a97' stroke-width='0.8'/>")
    head = (f"<rect x='{cx - 3.5}' y='{17}' width='7' height='8' fill='#eef2f6' stroke='#7d8a97' stroke-width='0.8'/>"
            f"<ellipse cx='{cx}' cy='{10}' rx='7.5' ry='9' fill='#eef2f6' stroke='#7d8a97' stroke-width='0.8'/>")
    return "".join(parts) + torso + head


def body_svg(marks: Iterable[tuple]) -> str:
    """The outline with ``marks``: (view, x, y, colour, label) each; a pair of electrodes is drawn per mark
    (which one is the cathode is in the channel's text, not in the picture)."""
    out = [f"<svg class='body' viewBox='0 0 {WIDTH} {HEIGHT}' xmlns='http://www.w3.org/2000/svg' role='img' "
           "aria-label='body outline, front and back, with the electrode sites'>"]
    for view, cx in CENTRE.items():
        out.append(_figure(cx))
        out.append(f"<text x='{cx}' y='{HEIGHT - 2}' text-anchor='middle' font-size='8' fill='#5b6773'>{view}</text>")
        right, left = (cx - 38, cx + 38) if view == "front" else (cx + 38, cx - 38)
        out.append(f"<text x='{right}' y='14' text-anchor='middle' font-size='8' font-weight='bold' fill='#5b6773'>R</text>"
                   f"<text x='{left}' y='14' text-anchor='middle' font-size='8' font-weight='bold' fill='#5b6773'>L</text>")
    for view, x, y, color, label in marks:
        cx = CENTRE[view]
        out.append(f"<line x1='{x}' y1='{y - 5}' x2='{x}' y2='{y + 5}' stroke='{color}' stroke-width='1.2'/>"
                   f"<circle cx='{x}' cy='{y - 5}' r='2.8' fill='{color}'/>"
                   f"<circle cx='{x}' cy='{y + 5}' r='2.8' fill='{color}'/>")
        tx = x + (7 if x >= cx else -7)
        out.append(f"<text x='{tx}' y='{y + 2.5}' text-anchor='{'start' if x >= cx else 'end'}' font-size='7.5' "
                   f"font-weight='bold' fill='{color}'>{label}</text>")
    out.append("</svg>")
    return "".join(out)
