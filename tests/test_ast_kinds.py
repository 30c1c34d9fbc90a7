"""Pulse kinds are node types of their own (dsl/ast.py), so the type checker sees which fields each one sets."""
from __future__ import annotations

import pickle

import pytest

from stimscript.dsl import ast, parse

TEXT = """stimscript 1
channel quad 1 {{
  site vastus_medialis left
  electrodes a -> b
  pulse {pulse}
  frequency 35 Hz
  amplitude 20 mA
}}
"""

KINDS = [
    ("monophasic 300 us", ast.Monophasic),
    ("biphasic 250 us gap 50 us", ast.Biphasic),
    ("asymmetric 300 us ratio 4", ast.Asymmetric),
    ("burst 2.5 kHz for 10 ms", ast.Burst),
    ("doublet 250 us spacing 5 ms", ast.Doublet),
    ("shape { +1.0 for 200 us; -0.25 for 800 us }", ast.CustomShape),
]


@pytest.mark.parametrize(("pulse", "node_type"), KINDS)
def test_each_kind_parses_to_its_node_type(pulse, node_type):
    channel = next(i for i in parse(TEXT.format(pulse=pulse)).items if isinstance(i, ast.Channel))
    node = next(s for s in channel.body if isinstance(s, ast.Pulse))
    assert type(node) is node_type
    assert node.kind == pulse.split()[0]
    assert ast.PULSE_KINDS[node.kind] is node_type


def test_pulse_of_a_kind_builds_that_type_and_compares_as_before():
    w = ast.Number(250, "us")
    p = ast.Pulse("biphasic", width=w)
    assert isinstance(p, ast.Biphasic) and isinstance(p, ast.Pulse)
    assert p == ast.Pulse("biphasic", w) == ast.Pulse(kind="biphasic", width=w)
    assert p != ast.Pulse("monophasic", width=w)
    again = ast.replace(p, gap=ast.Number(50, "us"))
    assert type(again) is ast.Biphasic and again.gap == ast.Number(50, "us")
    assert pickle.loads(pickle.dumps(p)) == p


def test_unknown_kind_stays_a_plain_pulse():
    p = ast.Pulse("sine", width=ast.Number(1, "ms"))
    assert type(p) is ast.Pulse and p.kind == "sine"
