"""The motor-point atlas shipped with the package (its entries: :data:`ENTRIES`, at the end of this file).

Each entry names one stimulation site (a muscle, a muscle group or a nerve point), gives a landmark-based
description of where its motor point(s) lie and where to put the electrodes, a suggested electrode size and
the published source of the description. Sides (``left``/``right``) are not part of the names: a channel
says ``site vastus_medialis right``.

    >>> from stimscript.compiler import atlas
    >>> atlas.lookup("vastus_medialis").region
    'thigh'
    >>> atlas.suggest("vastus_medial")[0]
    'vastus_medialis'

The entries are Python data in this module, their only copy, edited by hand: each has ``name`` (a lowercase
identifier, no side), ``region``, ``muscle``, ``landmark`` (where the motor point(s) lie and where the
electrodes go), ``typical_electrode``, ``source`` (the published reference) and, where the source gives it,
``motor_points``. Python rather than JSON so that a check naming a site reads them with this module's cached
bytecode (the checker imports it anyway) instead of importing :mod:`json`, whose import compiles several
regular expressions, and parsing text: together about a twentieth of a small file's ``stimscript check``.
"""
from __future__ import annotations

from functools import lru_cache

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
def _positions() -> dict[str, int]:
    """``{name: index in ENTRIES}`` in atlas order; raises ValueError for a name given twice."""
    positions: dict[str, int] = {}
    for i, raw in enumerate(ENTRIES):
        name = raw["name"]
        if name in positions:
            raise ValueError(f"duplicate atlas entry {name!r}")
        positions[name] = i
    return positions


#: the entries built so far, by name (one AtlasEntry per site per process: a lookup and load_atlas share it)
_BUILT: dict[str, AtlasEntry] = {}


def _entry(name: str) -> AtlasEntry:
    """The entry of site ``name`` (a key of :func:`_positions`), built from :data:`ENTRIES` on first use."""
    entry = _BUILT.get(name)
    if entry is None:
        raw = ENTRIES[_positions()[name]]
        entry = _BUILT[name] = AtlasEntry(
            name=raw["name"],
            region=raw["region"],
            muscle=raw["muscle"],
            landmark=raw["landmark"],
            typical_electrode=raw["typical_electrode"],
            source=raw["source"],
            motor_points=raw.get("motor_points"),
        )
    return entry


@lru_cache(maxsize=1)
def load_atlas() -> dict[str, AtlasEntry]:
    """The atlas, built once from :data:`ENTRIES`; returns ``{name: AtlasEntry}`` in atlas order."""
    return {name: _entry(name) for name in _positions()}


def lookup(name: str) -> AtlasEntry | None:
    """The entry called ``name`` (exact, then case-insensitive), or None.

    Only that entry is built (a check names one or two sites of the atlas's two dozen): the same object
    :func:`load_atlas` holds under that name."""
    positions = _positions()
    if name not in positions:
        name = name.lower()
        if name not in positions:
            return None
    return _entry(name)


def names() -> list[str]:
    """All site names, in atlas order."""
    return list(_positions())


def suggest(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` site names close to ``name`` (did-you-mean; case-insensitive), best first."""
    from ..suggest import close_matches   # only for errors: a check of a good file never imports it

    return close_matches(name.lower(), names(), n)


#: the atlas format's version
VERSION = 1

#: what the atlas is
DESCRIPTION = (
    "Motor-point atlas: landmark-based electrode placement for common NMES sites. Positions are population averages "
    "with real individual variation; always confirm on the patient."
)

#: every site, in atlas order
ENTRIES: tuple[dict, ...] = (
    {
        "name": "vastus_medialis",
        "region": "thigh",
        "muscle": "vastus medialis",
        "landmark": (
            "Two motor points on the line from the anterior superior iliac spine (ASIS) to the superomedial border of "
            "the patella: a distal one (oblique portion) roughly 80-90 % of the way down that line, about 3-6 cm above "
            "and medial to the superomedial patellar corner, and a proximal one (long portion) a few centimetres "
            "higher, at roughly 70-80 % of the line. For quadriceps strengthening the distal electrode goes over the "
            "distal motor point and the second electrode over the proximal anterolateral thigh. Confirm the motor "
            "point before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 "
            "mA) for the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm (both electrodes over the muscle belly)",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 2,
    },
    {
        "name": "vastus_lateralis",
        "region": "thigh",
        "muscle": "vastus lateralis",
        "landmark": (
            "Three motor points. The proximal one lies on the line from the ASIS to the superolateral border of the "
            "patella, in its upper half (this one varies most between people); the central and distal ones lie on the "
            "line from the apex of the greater trochanter to the superolateral border of the patella, the central near "
            "the middle of the thigh and the distal one roughly in the distal quarter, a hand's breadth above the "
            "superolateral patellar corner. Confirm the motor point before fixing the electrode: scan the skin with a "
            "pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible twitch at the least "
            "current."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm (both electrodes over the muscle belly)",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 3,
    },
    {
        "name": "rectus_femoris",
        "region": "thigh",
        "muscle": "rectus femoris",
        "landmark": (
            "Two motor points on the line from the ASIS to the superior border of the patella: a proximal one roughly "
            "at a quarter to a third of the line (about a hand's breadth below the ASIS) and a distal one a few "
            "centimetres further down, towards the middle of the line, both in the midline of the anterior thigh. "
            "Confirm the motor point before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 "
            "µs pulses, < 10 mA) for the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm (both electrodes over the muscle belly)",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 2,
    },
    {
        "name": "quadriceps",
        "region": "thigh",
        "muscle": "quadriceps femoris (group placement)",
        "landmark": (
            "Group placement for whole-quadriceps NMES: one electrode over the proximal anterolateral thigh (proximal "
            "vastus lateralis / rectus femoris motor points, about a third of the way from the ASIS to the patella) "
            "and one over the distal vastus medialis motor point (about 3-6 cm above and medial to the superomedial "
            "corner of the patella), knee at 60-90 deg of flexion for isometric contractions. Confirm the motor point "
            "before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for "
            "the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "7.6 cm x 12.7 cm or larger",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
    },
    {
        "name": "biceps_femoris",
        "region": "thigh",
        "muscle": "biceps femoris",
        "landmark": (
            "Two motor points, one for the long head and one for the short head (the short-head point varies between "
            "people), on the posterolateral thigh along the line from the ischial tuberosity to the lateral epicondyle "
            "of the tibia / fibular head: the long-head point in the middle third of that line, the short-head point "
            "in its distal third, lateral to the long-head tendon. Patient prone. Confirm the motor point before "
            "fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the "
            "spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm (both electrodes over the muscle belly)",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 2,
    },
    {
        "name": "semitendinosus",
        "region": "thigh",
        "muscle": "semitendinosus",
        "landmark": (
            "One motor point on the posteromedial thigh along the line from the ischial tuberosity to the medial "
            "epicondyle of the tibia, in the proximal half of that line (the muscle's tendinous inscription divides "
            "it, so check the whole belly). Patient prone. Confirm the motor point before fixing the electrode: scan "
            "the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible "
            "twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 1,
    },
    {
        "name": "semimembranosus",
        "region": "thigh",
        "muscle": "semimembranosus",
        "landmark": (
            "One motor point on the posteromedial thigh, deep to and on either side of the semitendinosus, along the "
            "line from the ischial tuberosity to the medial epicondyle of the tibia, in the distal half of the thigh; "
            "its position varies considerably between people. Patient prone. Confirm the motor point before fixing the "
            "electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that "
            "gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 1,
    },
    {
        "name": "hamstrings",
        "region": "thigh",
        "muscle": "hamstrings (group placement)",
        "landmark": (
            "Group placement for knee-flexor NMES: one electrode on the posterior thigh just below the gluteal fold "
            "(proximal third of the line from the ischial tuberosity to the knee), one over the distal posterior thigh "
            "about a hand's breadth above the popliteal crease, covering the biceps femoris and semitendinosus motor "
            "points in between. Patient prone. Confirm the motor point before fixing the electrode: scan the skin with "
            "a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible twitch at the "
            "least current."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
    },
    {
        "name": "gluteus_maximus",
        "region": "hip",
        "muscle": "gluteus maximus",
        "landmark": (
            "Muscle belly at 50 % on the line from the sacral vertebrae (lateral border of the sacrum) to the greater "
            "trochanter, at the greatest prominence of the buttock; the second electrode a few centimetres "
            "superomedial or inferolateral along the fibre direction. Patient prone or side-lying. Confirm the motor "
            "point before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 "
            "mA) for the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "gluteus_medius",
        "region": "hip",
        "muscle": "gluteus medius",
        "landmark": (
            "Muscle belly at 50 % on the line from the highest point of the iliac crest to the greater trochanter "
            "(about a hand's breadth below the crest, above the trochanter); the second electrode just below the iliac "
            "crest along the same line. Patient side-lying, stimulated side up. Confirm the motor point before fixing "
            "the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that "
            "gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "tibialis_anterior",
        "region": "leg",
        "muscle": "tibialis anterior",
        "landmark": (
            "Two motor points in the proximal third of the anterolateral leg, one to two finger breadths lateral to "
            "the tibial crest, on the line from the fibular head (or tibial tuberosity) to the ankle between the "
            "malleoli; the muscle belly lies at about one third of the line from the tip of the fibula to the tip of "
            "the medial malleolus. Second electrode over the distal belly (middle of the leg). Confirm the motor point "
            "before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for "
            "the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471; Gobbo M, Maffiuletti NA, Orizio C, Minetto MA. Muscle motor point "
            "identification is essential for optimizing neuromuscular electrical stimulation use. J Neuroeng Rehabil. "
            "2014;11:17"
        ),
        "motor_points": 2,
    },
    {
        "name": "peroneus_longus",
        "region": "leg",
        "muscle": "peroneus (fibularis) longus",
        "landmark": (
            "One motor point on the lateral leg just below the fibular head, at roughly the proximal quarter of the "
            "line from the fibular head to the lateral malleolus; stimulating here everts the foot (check that it is "
            "not the common peroneal nerve trunk, which lies more posterior and proximal). Confirm the motor point "
            "before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for "
            "the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "3.2 cm round to 5 cm x 5 cm",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 1,
    },
    {
        "name": "common_peroneal_nerve",
        "region": "leg",
        "muscle": "common peroneal (fibular) nerve (dorsiflexors and evertors)",
        "landmark": (
            "Nerve stimulation point for dorsiflexion (drop-foot FES): the nerve winds around the neck of the fibula "
            "just below and slightly posterior to the fibular head. Place the small (cathode) electrode there and the "
            "second electrode over the tibialis anterior motor point about 5 cm distal and medial. Adjust the position "
            "by a few millimetres to balance dorsiflexion against eversion (more anterior/medial = more dorsiflexion, "
            "more lateral = more eversion). Avoid stimulating over the popliteal fossa."
        ),
        "typical_electrode": "3.2 cm round to 5 cm x 5 cm",
        "source": (
            "Lyons GM, Sinkjaer T, Burridge JH, Wilcox DJ. A review of portable FES-based neural orthoses for the "
            "correction of drop foot. IEEE Trans Neural Syst Rehabil Eng. 2002;10(4):260-279; Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "gastrocnemius_medialis",
        "region": "leg",
        "muscle": "gastrocnemius, medial head",
        "landmark": (
            "One motor point in the proximal half of the medial calf, over the most prominent bulge of the medial "
            "head, roughly a quarter to a third of the way from the popliteal crease to the heel (its position varies "
            "between people); second electrode over the distal belly above the musculotendinous junction. Patient "
            "prone with the ankle just over the end of the couch. Confirm the motor point before fixing the electrode: "
            "scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible "
            "twitch at the least current."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm (both electrodes over the muscle belly)",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 1,
    },
    {
        "name": "gastrocnemius_lateralis",
        "region": "leg",
        "muscle": "gastrocnemius, lateral head",
        "landmark": (
            "One motor point in the proximal lateral calf, over the lateral head at about one third of the line from "
            "the fibular head to the heel; second electrode distal on the belly. Patient prone. Confirm the motor "
            "point before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 "
            "mA) for the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Botter A, Oprandi G, Lanfranco F, Allasia S, Maffiuletti NA, Minetto MA. Atlas of the muscle motor points "
            "for the lower limb: implications for electrical stimulation procedures and electrode positioning. Eur J "
            "Appl Physiol. 2011;111(10):2461-2471"
        ),
        "motor_points": 1,
    },
    {
        "name": "soleus",
        "region": "leg",
        "muscle": "soleus",
        "landmark": (
            "Distal calf: the soleus is accessible medially and laterally to the Achilles tendon below the "
            "gastrocnemius bellies, at about two thirds of the line from the medial condyle of the femur to the medial "
            "malleolus; place one electrode there and the second over the opposite side of the tendon or more "
            "proximally. Confirm the motor point before fixing the electrode: scan the skin with a pen electrode "
            "(about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "biceps_brachii",
        "region": "arm",
        "muscle": "biceps brachii",
        "landmark": (
            "Muscle belly on the line from the medial acromion to the cubital fossa, at about one third of the line "
            "from the cubital fossa (the motor point usually lies near the middle of the anterior arm, over the "
            "greatest bulk); second electrode distal on the belly above the cubital fossa. Confirm the motor point "
            "before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for "
            "the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "triceps_brachii",
        "region": "arm",
        "muscle": "triceps brachii",
        "landmark": (
            "Posterior arm, at 50 % of the line from the posterior crest of the acromion to the olecranon: about two "
            "finger breadths medial to that point for the long head, two finger breadths lateral for the lateral head; "
            "second electrode distally over the common belly above the olecranon. Confirm the motor point before "
            "fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the "
            "spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "deltoid_anterior",
        "region": "shoulder",
        "muscle": "deltoid, anterior part",
        "landmark": (
            "About one finger breadth distal and anterior to the acromion, on the anterior bulge of the shoulder in "
            "line with the fibres towards the deltoid tuberosity. Confirm the motor point before fixing the electrode: "
            "scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible "
            "twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "deltoid_middle",
        "region": "shoulder",
        "muscle": "deltoid, middle part",
        "landmark": (
            "Greatest bulge of the lateral shoulder on the line from the acromion to the lateral epicondyle of the "
            "humerus, a few centimetres below the acromion. Confirm the motor point before fixing the electrode: scan "
            "the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible "
            "twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "deltoid_posterior",
        "region": "shoulder",
        "muscle": "deltoid, posterior part",
        "landmark": (
            "About two finger breadths behind the angle of the acromion, on the posterior bulge of the shoulder; used "
            "with supraspinatus stimulation against shoulder subluxation after stroke. Confirm the motor point before "
            "fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the "
            "spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Parker K. "
            "Neuromuscular electrical stimulation of the muscles surrounding the shoulder. Phys Ther. "
            "1986;66(12):1930-1937"
        ),
    },
    {
        "name": "supraspinatus",
        "region": "shoulder",
        "muscle": "supraspinatus",
        "landmark": (
            "Over the supraspinous fossa, just above the middle of the spine of the scapula (the muscle lies under the "
            "upper trapezius, so expect some trapezius activation); the second electrode usually over the posterior "
            "deltoid for subluxation reduction after stroke. Confirm the motor point before fixing the electrode: scan "
            "the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible "
            "twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm to 5 cm x 9 cm",
        "source": (
            "Baker LL, Parker K. Neuromuscular electrical stimulation of the muscles surrounding the shoulder. Phys "
            "Ther. 1986;66(12):1930-1937; Baker LL, Wederich CL, McNeal DR, Newsam C, Waters RL. Neuromuscular "
            "Electrical Stimulation: A Practical Guide. 4th ed. Downey, CA: Los Amigos Research and Education "
            "Institute; 2000"
        ),
    },
    {
        "name": "extensor_carpi_radialis",
        "region": "forearm",
        "muscle": "extensor carpi radialis longus and brevis",
        "landmark": (
            "Dorsoradial forearm, over the muscle mass about 5 cm (two to three finger breadths) distal to the lateral "
            "epicondyle of the humerus, forearm pronated; wrist extension with radial deviation confirms the site. "
            "Second electrode distally over the dorsal forearm. Confirm the motor point before fixing the electrode: "
            "scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible "
            "twitch at the least current."
        ),
        "typical_electrode": "3.2 cm round to 5 cm x 5 cm",
        "source": (
            "Perotto AO. Anatomical Guide for the Electromyographer: The Limbs and Trunk. 5th ed. Springfield, IL: "
            "Charles C Thomas; 2011; Baker LL, Wederich CL, McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical "
            "Stimulation: A Practical Guide. 4th ed. Downey, CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "extensor_digitorum",
        "region": "forearm",
        "muscle": "extensor digitorum",
        "landmark": (
            "Dorsal forearm, in the middle of the line from the lateral epicondyle to the midpoint of the dorsal "
            "wrist, about a third of the way down the forearm and ulnar to the extensor carpi radialis; finger (MCP) "
            "extension confirms the site. Confirm the motor point before fixing the electrode: scan the skin with a "
            "pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible twitch at the least "
            "current."
        ),
        "typical_electrode": "3.2 cm round to 5 cm x 5 cm",
        "source": (
            "Perotto AO. Anatomical Guide for the Electromyographer: The Limbs and Trunk. 5th ed. Springfield, IL: "
            "Charles C Thomas; 2011; Baker LL, Wederich CL, McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical "
            "Stimulation: A Practical Guide. 4th ed. Downey, CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "flexor_carpi_radialis",
        "region": "forearm",
        "muscle": "flexor carpi radialis",
        "landmark": (
            "Volar forearm, about a third of the way down the line from the medial epicondyle of the humerus to the "
            "radial side of the wrist (scaphoid tubercle), over the muscle belly; wrist flexion with radial deviation "
            "confirms the site. Confirm the motor point before fixing the electrode: scan the skin with a pen "
            "electrode (about 2 Hz, 150 µs pulses, < 10 mA) for the spot that gives a visible twitch at the least "
            "current."
        ),
        "typical_electrode": "3.2 cm round to 5 cm x 5 cm",
        "source": (
            "Perotto AO. Anatomical Guide for the Electromyographer: The Limbs and Trunk. 5th ed. Springfield, IL: "
            "Charles C Thomas; 2011; Baker LL, Wederich CL, McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical "
            "Stimulation: A Practical Guide. 4th ed. Downey, CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "wrist_extensors",
        "region": "forearm",
        "muscle": "wrist and finger extensors (group placement)",
        "landmark": (
            "Group placement for wrist/finger extension (e.g. after stroke): proximal electrode over the extensor mass "
            "about 5 cm distal to the lateral epicondyle (extensor carpi radialis and extensor digitorum motor "
            "points), distal electrode over the dorsal forearm about 5 cm proximal to the wrist crease. Shift the "
            "proximal electrode radially or ulnarly to balance radial and ulnar deviation. Confirm the motor point "
            "before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for "
            "the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 5 cm (two electrodes)",
        "source": (
            "Baker LL, Wederich CL, McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical "
            "Guide. 4th ed. Downey, CA: Los Amigos Research and Education Institute; 2000; Perotto AO. Anatomical "
            "Guide for the Electromyographer: The Limbs and Trunk. 5th ed. Springfield, IL: Charles C Thomas; 2011"
        ),
    },
    {
        "name": "erector_spinae",
        "region": "trunk",
        "muscle": "erector spinae (lumbar)",
        "landmark": (
            "Paravertebral, about two finger breadths lateral to the spinous process of L1 (longissimus) or one finger "
            "breadth medial to the line from the posterior superior iliac spine to the lowest rib at the level of L2 "
            "(iliocostalis); the second electrode a few centimetres caudal along the muscle. Keep electrode pairs on "
            "one side of the spine unless stimulating bilaterally with separate channels. Confirm the motor point "
            "before fixing the electrode: scan the skin with a pen electrode (about 2 Hz, 150 µs pulses, < 10 mA) for "
            "the spot that gives a visible twitch at the least current."
        ),
        "typical_electrode": "5 cm x 9 cm",
        "source": (
            "Hermens HJ, Freriks B, Disselhorst-Klug C, Rau G. Development of recommendations for SEMG sensors and "
            "sensor placement procedures. J Electromyogr Kinesiol. 2000;10(5):361-374 (SENIAM); Baker LL, Wederich CL, "
            "McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical Guide. 4th ed. Downey, "
            "CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
    {
        "name": "abdominals",
        "region": "trunk",
        "muscle": "rectus abdominis and abdominal wall",
        "landmark": (
            "Rectus abdominis: electrodes paired vertically about 3 cm lateral to the midline, one at and one a hand's "
            "breadth above or below the umbilicus; for the oblique abdominal wall place the pair over the lateral "
            "abdomen between the lower ribs and the iliac crest. Do not stimulate over the abdomen during pregnancy."
        ),
        "typical_electrode": "5 cm x 9 cm to 7.6 cm x 12.7 cm",
        "source": (
            "Baker LL, Wederich CL, McNeal DR, Newsam C, Waters RL. Neuromuscular Electrical Stimulation: A Practical "
            "Guide. 4th ed. Downey, CA: Los Amigos Research and Education Institute; 2000"
        ),
    },
)
