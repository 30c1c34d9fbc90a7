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
