"""What checking does with the cyclic garbage collector (compiler/checker.py ``paused_gc``).

Checking pauses the collector and, after, moves what it made straight to the oldest generation
(``gc.freeze()`` + ``gc.unfreeze()``) instead of leaving it to the first young collection to walk. A user
relies on: the collector running again afterwards, a pause of their own left as it is, objects they froze
staying frozen, and garbage in a reference cycle still being collected.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys

import stimscript
from stimscript.compiler.checker import paused_gc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "tka_quadriceps.stim")


def _run(code: str) -> str:
    """``code`` in a fresh interpreter (the suite's own process may have frozen objects: ``check`` does at
    start-up, and then the checker leaves the generations alone)."""
    result = subprocess.run([sys.executable, "-c", code, EXAMPLE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_collector_runs_again_after_a_check_and_the_checked_objects_are_not_young():
    assert _run("""
import gc, sys
import stimscript
assert gc.isenabled() and gc.get_freeze_count() == 0
protocol = stimscript.load(sys.argv[1])
assert gc.isenabled() and gc.get_freeze_count() == 0
young = {id(o) for o in gc.get_objects(generation=0)} | {id(o) for o in gc.get_objects(generation=1)}
made = [protocol, protocol.ast] + list(protocol.resolve(1).uses) + list(protocol.resolve(1).trains)
print(len(made), sum(1 for o in made if id(o) in young))
""").endswith(" 0")   # promoted at once, not left to a young collection


def test_a_callers_own_pause_is_left_alone():
    gc.disable()
    try:
        stimscript.load(EXAMPLE)
        assert not gc.isenabled()
        assert paused_gc(lambda x: x + 1, 41) == 42
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_objects_a_caller_froze_stay_frozen():
    out = _run("""
import gc, sys
import stimscript
mine = [[k] for k in range(100)]
gc.freeze()
def frozen():   # the permanent generation is in no generation gc.get_objects() lists
    listed = {id(o) for o in gc.get_objects()}
    return not any(id(o) in listed for o in mine)
before = frozen()
protocol = stimscript.load(sys.argv[1])
listed = {id(o) for o in gc.get_objects()}   # every generation but the permanent one
print(before, frozen(), id(protocol) in listed and id(protocol.ast) in listed)
""")
    assert out == "True True True"


def test_garbage_in_a_cycle_made_while_paused_is_still_collected():
    class Node:
        pass

    def make_cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return None

    before = gc.get_freeze_count()
    paused_gc(make_cycle)
    assert gc.get_freeze_count() == before
    assert gc.collect() >= 2
    assert not [o for o in gc.get_objects() if type(o) is Node]


def test_an_error_inside_still_restores_the_collector():
    def fail():
        raise ValueError("boom")

    try:
        paused_gc(fail)
    except ValueError:
        pass
    assert gc.isenabled()
