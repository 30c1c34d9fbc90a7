"""One switch for every compiled twin: STIMSCRIPT_NO_EXTENSIONS forces every reference, and
STIMSCRIPT_REQUIRE_EXTENSIONS makes a twin that failed to build an error instead of a silent slow path."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stimscript import twins

#: every selector of a compiled twin and the flag it sets when the twin is in use
SELECTORS = ["stimscript.compiler.expander", "stimscript.compiler.lowering", "stimscript.compiler.delivered",
             "stimscript.dsl.parser", "stimscript.drivers.link"]


def _using(tmp_path, **env_extra: str) -> list[bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIMSCRIPT_")}
    env.update(env_extra)
    code = ("import importlib\n"
            f"for name in {SELECTORS!r}:\n"
            "    print(importlib.import_module(name).USING_EXTENSION)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [line == "True" for line in done.stdout.split()]


def test_no_extensions_forces_every_reference(tmp_path):
    assert _using(tmp_path, STIMSCRIPT_NO_EXTENSIONS="1") == [False] * len(SELECTORS)
    assert _using(tmp_path, STIMSCRIPT_NO_EXTENSIONS="1", STIMSCRIPT_REQUIRE_EXTENSIONS="1") == [False] * len(SELECTORS)


def test_required_twins_are_all_in_use(tmp_path):
    """Where the package was built with its extensions (CI's first pass), requiring them finds every one."""
    from stimscript.compiler import expander

    if not expander.USING_EXTENSION:
        pytest.skip("this installation runs the pure-Python reference")
    assert _using(tmp_path, STIMSCRIPT_REQUIRE_EXTENSIONS="1") == [True] * len(SELECTORS)


@pytest.mark.parametrize("value, wanted", [("", True), ("0", True), ("1", False), ("yes", False)])
def test_wanted_reads_no_extensions(monkeypatch, value, wanted):
    monkeypatch.setenv("STIMSCRIPT_NO_EXTENSIONS", value)
    assert twins.wanted() is wanted


def test_missing_twin_raises_only_when_required(monkeypatch):
    err = ImportError("no module named stimscript.ext._nothing")
    monkeypatch.delenv("STIMSCRIPT_REQUIRE_EXTENSIONS", raising=False)
    twins.missing(err)                        # the caller keeps its reference
    monkeypatch.setenv("STIMSCRIPT_REQUIRE_EXTENSIONS", "1")
    with pytest.raises(ImportError) as raised:
        twins.missing(err)
    assert raised.value is err
