"""The motor-point atlas shipped as package data (docs/language.md)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from stimscript.compiler import atlas

REQUIRED = [
    "vastus_medialis", "vastus_lateralis", "rectus_femoris", "biceps_femoris", "semitendinosus",
    "gluteus_maximus", "gluteus_medius", "tibialis_anterior", "gastrocnemius_medialis",
    "gastrocnemius_lateralis", "soleus", "peroneus_longus", "common_peroneal_nerve", "biceps_brachii",
    "triceps_brachii", "deltoid_anterior", "deltoid_middle", "extensor_carpi_radialis", "extensor_digitorum",
    "flexor_carpi_radialis", "wrist_extensors", "supraspinatus", "erector_spinae", "abdominals",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_site_present_with_landmark_and_source(name):
    entry = atlas.lookup(name)
    assert entry is not None, name
    assert entry.name == name
    for field in ("region", "muscle", "landmark", "typical_electrode", "source"):
        value = getattr(entry, field)
        assert isinstance(value, str) and value.strip(), (name, field)
    assert len(entry.landmark) > 40  # a description a clinician can follow, not a stub


def test_names_are_unique_identifiers_without_sides():
    all_names = atlas.names()
    assert len(all_names) == len(set(all_names))
    assert set(REQUIRED) <= set(all_names)
    for name in all_names:
        assert name.isidentifier() and name == name.lower(), name
        assert not name.endswith(("_left", "_right")) and not name.startswith(("left_", "right_")), name


def test_entries_are_frozen():
    entry = atlas.lookup("soleus")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "other"  # type: ignore[misc]


def test_load_atlas_is_cached():
    assert atlas.load_atlas() is atlas.load_atlas()


def test_lookup_unknown_and_case():
    assert atlas.lookup("no_such_muscle") is None
    assert atlas.lookup("Vastus_Medialis") is atlas.lookup("vastus_medialis")


def test_suggest_did_you_mean():
    assert "vastus_medialis" in atlas.suggest("vastus_medial")
    assert "vastus_medialis" in atlas.suggest("VASTUS_MEDIAL")
    assert atlas.suggest("tibialis")[0] == "tibialis_anterior"
    assert len(atlas.suggest("vastus", n=2)) <= 2
    assert atlas.suggest("zzzzzzzz") == []


def test_sources_cite_published_references():
    # Every source carries a year and is not a placeholder.
    for entry in atlas.load_atlas().values():
        assert any(str(year) in entry.source for year in range(1950, 2030)), entry.name
        assert "TODO" not in entry.source and "?" not in entry.source


def test_lower_limb_motor_points_cite_botter_atlas():
    for name in ("vastus_medialis", "vastus_lateralis", "rectus_femoris", "biceps_femoris", "semitendinosus",
                 "tibialis_anterior", "peroneus_longus", "gastrocnemius_medialis", "gastrocnemius_lateralis"):
        assert "Botter" in atlas.lookup(name).source, name


def test_entries_are_built_from_the_data_in_its_order():
    assert [raw["name"] for raw in atlas.ENTRIES] == atlas.names()
    fields = {f.name for f in dataclasses.fields(atlas.AtlasEntry)}
    for raw in atlas.ENTRIES:
        assert set(raw) <= fields and set(raw) >= fields - {"motor_points"}, raw["name"]
        entry = atlas.lookup(raw["name"])
        assert {name: getattr(entry, name) for name in raw} == raw
        assert entry.motor_points == raw.get("motor_points")


def test_a_site_lookup_imports_no_json():
    # the atlas ships as a Python module so that a check naming a site does not import json (start-up)
    code = ("import sys\nfrom stimscript.compiler import atlas\nassert atlas.lookup('soleus') is not None\n"
            "print('json' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


def _plain_atlas() -> dict:
    """The oracle: every entry built from ENTRIES at once, as the atlas did before entries were built lazily."""
    out: dict = {}
    for raw in atlas.ENTRIES:
        assert raw["name"] not in out
        out[raw["name"]] = atlas.AtlasEntry(**{f.name: raw.get(f.name) for f in dataclasses.fields(atlas.AtlasEntry)})
    return out


def _variants():
    from hypothesis import strategies as st

    names = st.sampled_from([raw["name"] for raw in atlas.ENTRIES])
    cased = st.tuples(names, st.lists(st.booleans(), min_size=40, max_size=40)).map(
        lambda t: "".join(c.upper() if up else c for c, up in zip(t[0], t[1])))
    return st.one_of(names, cased, st.text(max_size=12), names.map(lambda n: n + "_x"))


def test_lookup_builds_only_the_entry_asked_for(monkeypatch):
    monkeypatch.setattr(atlas, "_BUILT", {})
    entry = atlas.lookup("Soleus")
    assert list(atlas._BUILT) == ["soleus"] and atlas._BUILT["soleus"] is entry
    assert atlas.lookup("no_such_muscle") is None and list(atlas._BUILT) == ["soleus"]


def test_lazy_lookup_names_and_load_atlas_match_the_plain_atlas():
    from hypothesis import given, settings

    plain = _plain_atlas()
    assert atlas.load_atlas() == plain and list(atlas.load_atlas()) == list(plain) == atlas.names()

    @settings(max_examples=300, deadline=None)
    @given(_variants())
    def check(name):
        expected = plain.get(name) or plain.get(name.lower())
        found = atlas.lookup(name)
        assert found == expected
        if found is not None:
            assert found is atlas.load_atlas()[found.name]   # one object per site

    check()


def test_a_duplicate_name_is_still_refused(monkeypatch):
    monkeypatch.setattr(atlas, "ENTRIES", atlas.ENTRIES + atlas.ENTRIES[:1])
    atlas._positions.cache_clear()
    try:
        with pytest.raises(ValueError, match="duplicate atlas entry 'vastus_medialis'"):
            atlas.lookup("soleus")
    finally:
        monkeypatch.undo()
        atlas._positions.cache_clear()
