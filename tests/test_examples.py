"""The prebuilt protocols in examples/: every file is canonical, passes the checker, documents its source in a
header table, and compiles to the worked pulse counts of session 1 and of one session of each progression phase.

The worked counts are computed here by an independent counter written from the language reference's
semantics (slots at ``round(k * 1e6 / f)`` µs from each cycle's start while ``t < on_end``, trapezoid envelope,
zero-amplitude slots dropped, ``for T`` runs whole cycles that fit, ``repeat N`` ends with its last line) from the
parameters the file's header table states -- not by the compiler. The README's table and each header's
``# counts:`` lines are checked against the compiled schedules, so neither can drift from what is delivered.
Set STIMSCRIPT_UPDATE_EXAMPLE_COUNTS=1 to rewrite both from the compiled schedules.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest

import stimscript

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
README = EXAMPLES / "README.md"
UPDATE = os.environ.get("STIMSCRIPT_UPDATE_EXAMPLE_COUNTS") == "1"
S = 1_000_000  # µs per second


# ---- the independent counter ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """A cycle in seconds (exact decimals as strings or numbers); None stands for the built-in `continuous`."""

    ramp_up: str = "0"
    hold: str = "0"
    ramp_down: str = "0"
    rest: str = "0"

    def us(self, name: str) -> int:
        value = Fraction(getattr(self, name)) * S
        assert value.denominator == 1
        return int(value)

    @property
    def on_us(self) -> int:
        return self.us("ramp_up") + self.us("hold") + self.us("ramp_down")

    @property
    def length_us(self) -> int:
        return self.on_us + self.us("rest")


@dataclass(frozen=True)
class Line:
    channels: tuple[int, ...]
    cycle: Cycle | None  # None: continuous
    hz: str
    amplitude_ua: int
    after_s: str = "0"


@dataclass(frozen=True)
class Repeat:
    n: int
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class For:
    seconds: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Pause:
    seconds: str


@dataclass(frozen=True)
class Sets:
    """`repeat N { blocks }`: the sequence of blocks run N times."""

    n: int
    blocks: tuple


def _slot_offsets(hz: str, end_us: int):
    """Slot times from a train's start: round(k * 1e6 / f), half to even (Python's round on a Fraction)."""
    period = Fraction(S) / Fraction(hz)
    k = 0
    while True:
        t = round(k * period)
        if t >= end_us:
            return
        yield t
        k += 1


def _envelope(c: Cycle, t: int) -> Fraction:
    ru, hold, rd = c.us("ramp_up"), c.us("hold"), c.us("ramp_down")
    if t < ru:
        return Fraction(t, ru)
    if t < ru + hold:
        return Fraction(1)
    return Fraction(ru + hold + rd - t, rd)


def pulses_per_cycle(c: Cycle, hz: str, amplitude_ua: int) -> int:
    return sum(1 for t in _slot_offsets(hz, c.on_us) if round(amplitude_ua * _envelope(c, t)) != 0)


def count_blocks(blocks) -> tuple[dict[int, int], int]:
    """Pulses per channel number and the duration in µs of a session made of these blocks."""
    counts: dict[int, int] = {}
    total = 0
    for block in blocks:
        if isinstance(block, Pause):
            total += int(Fraction(block.seconds) * S)
            continue
        if isinstance(block, Sets):
            inner, dur = count_blocks(block.blocks)
            for ch, n in inner.items():
                counts[ch] = counts.get(ch, 0) + block.n * n
            total += block.n * dur
            continue
        length = 0
        for line in block.lines:
            after = int(Fraction(line.after_s) * S)
            if isinstance(block, For):
                span = int(Fraction(block.seconds) * S)
                if line.cycle is None:
                    n = sum(1 for _ in _slot_offsets(line.hz, span - after))
                else:
                    n = (span - after) // line.cycle.length_us * pulses_per_cycle(line.cycle, line.hz, line.amplitude_ua)
                length = span
            else:
                assert line.cycle is not None, "continuous has no length of its own"
                n = block.n * pulses_per_cycle(line.cycle, line.hz, line.amplitude_ua)
                length = max(length, after + block.n * line.cycle.length_us)
            for ch in line.channels:
                counts[ch] = counts.get(ch, 0) + n
        total += length
    return counts, total


def test_counter_reproduces_the_language_reference_examples():
    """The counter itself against the reference's two worked cycles (749 and 500 pulses)."""
    assert pulses_per_cycle(Cycle(ramp_up="3", hold="12", rest="45"), "50", 40_000) == 749
    assert pulses_per_cycle(Cycle(hold="10", rest="5"), "50", 40_000) == 500
    # a 75 Hz train: k = 750 lands exactly on 10 s and is not < 10 s
    assert pulses_per_cycle(Cycle(ramp_up="2", hold="8", rest="50"), "75", 50_000) == 749
    # a slot whose rounded amplitude is 0 uA is not emitted
    assert pulses_per_cycle(Cycle(hold="1", ramp_down="1"), "1000", 400) < 2000


# ---- the worked sessions of every clinical file (parameters as in each header table) ----------------------


@dataclass
class Example:
    name: str
    sessions: dict[int, list]  # session number -> blocks
    template: bool = False
    channels: dict[int, str] = field(default_factory=dict)


def _tka():
    c = Cycle(ramp_up="3", hold="12", rest="45")
    return {1: [Repeat(15, (Line((1,), c, "50", 40_000),))]}


def _neder():
    def week(hold, rest, minutes):
        c = Cycle(ramp_up="0.5", hold=hold, rest=rest)
        return [For(str(60 * minutes), (Line((1, 2), c, "50", 15_000),))]

    # week 1: 2 s on / 18 s off, 15 min; week 2: 5/25, 30 min; weeks 3-6: 10/30, 30 min (5 sessions a week)
    return {1: week("1.5", "18", 15), 6: week("4.5", "25", 30), 11: week("9.5", "30", 30),
            30: week("9.5", "30", 30)}


def _maddocks():
    def week(k):
        hold = min(Fraction("1.5") + 2 * (k - 1), Fraction("9.5"))
        c = Cycle(ramp_up="0.5", hold=str(hold), rest="15")
        return [For("1800", (Line((1, 2), c, "50", 30_000),))]

    # daily sessions: session 7(k-1)+1 is the first of week k
    return {7 * (k - 1) + 1: week(k) for k in range(1, 7)}


def _maddocks_nsclc():
    def week(k):
        hold = min(Fraction("1.5") + (k - 1), Fraction("4.5"))
        c = Cycle(ramp_up="0.5", hold=str(hold), rest="15")
        return [For("1800", (Line((1, 2), c, "50", 30_000),))]

    return {7 * (k - 1) + 1: week(k) for k in (1, 2, 3, 4, 9)}


def _kho():
    quad = Cycle(ramp_up="2", hold="2.5", ramp_down="0.5", rest="10")
    leg = Cycle(ramp_up="2", hold="2.5", ramp_down="0.5", rest="5")
    return {1: [For("3600", (Line((1, 2), quad, "50", 40_000), Line((3, 4), leg, "50", 30_000),
                             Line((5, 6), leg, "50", 30_000, after_s="5")))]}


def _fitzgerald():
    c = Cycle(ramp_up="2", hold="8", rest="50")
    return {1: [Repeat(10, (Line((1,), c, "75", 50_000),))]}


def _toth():
    c = Cycle(ramp_up="2", hold="8", rest="30")
    return {1: [Repeat(15, (Line((1,), c, "50", 40_000),))]}


def _powell():
    c = Cycle(ramp_up="1", hold="4", ramp_down="1", rest="10")
    return {1: [For("1800", (Line((1,), c, "30", 20_000),))]}


def _lin():
    c = Cycle(ramp_up="1", hold="8", ramp_down="1", rest="10")
    return {1: [For("1800", (Line((1, 2), c, "30", 20_000),))]}


def _malhotra():
    c = Cycle(ramp_up="1", hold="13", ramp_down="1", rest="15")
    return {1: [For("1800", (Line((1, 2), c, "40", 20_000),))]}


def _patsaki():
    c = Cycle(ramp_up="0.8", hold="3.4", ramp_down="0.8", rest="12")
    return {1: [For("1800", (Line((1, 2, 3, 4, 5, 6), c, "45", 40_000),))]}


def _tbi():
    c = Cycle(ramp_up="1", hold="5", ramp_down="1", rest="10")
    return {1: [For("1500", (Line((1, 2, 3, 4), c, "50", 40_000),))]}


def _reciprocal():
    c = Cycle(ramp_up="1", hold="4", ramp_down="1", rest="6")
    return {1: [Repeat(20, (Line((1,), c, "40", 40_000), Line((2,), c, "40", 30_000, after_s="6")))]}


def _warmup():
    c = Cycle(ramp_up="1.5", hold="6", ramp_down="1.5", rest="21")
    return {1: [For("300", (Line((1, 2), None, "5", 10_000),)), Repeat(20, (Line((1, 2), c, "50", 40_000),)),
                For("300", (Line((1, 2), None, "3", 8_000),))]}


def _doublet():
    return {1: [Repeat(20, (Line((1,), Cycle(ramp_up="1", hold="4", rest="10"), "20", 25_000),))]}


def _custom_shape():
    return {1: [Repeat(10, (Line((1,), Cycle(ramp_up="2", hold="6", ramp_down="2", rest="20"), "25", 30_000),))]}


def _foot_drop():
    c = Cycle(ramp_up="0.5", hold="1.5", ramp_down="0.5", rest="2.5")
    return {1: [For("1800", (Line((1,), c, "30", 25_000),))]}


def _sets():
    def week(hold):
        c = Cycle(ramp_up="1", hold=hold, ramp_down="1", rest="20")
        return [Sets(3, (Repeat(10, (Line((1,), c, "50", 40_000),)), Pause("120")))]

    # 3 sessions a week: weeks 1-2 hold 8 s; week 3.. 10 s; week 4 alone (deload) 6 s; back to 10 s in week 5
    return {1: week("8"), 7: week("10"), 10: week("6"), 13: week("10"), 18: week("10")}


CLINICAL = [
    Example("tka_quadriceps.stim", _tka()),
    Example("copd_quadriceps_progression.stim", _neder()),
    Example("copd_maddocks2016.stim", _maddocks()),
    Example("lung_cancer_maddocks2013.stim", _maddocks_nsclc()),
    Example("icu_multi_muscle.stim", _kho()),
    Example("icu_survivors_patsaki2017.stim", _patsaki()),
    Example("icu_tbi_silva2019.stim", _tbi()),
    Example("acl_russian_current.stim", _fitzgerald()),
    Example("acl_early_toth2020.stim", _toth()),
    Example("stroke_wrist_extensors.stim", _powell()),
    Example("stroke_upper_limb_lin2011.stim", _lin()),
    Example("stroke_wrist_finger_malhotra2013.stim", _malhotra()),
]

TEMPLATE_COUNTS = [
    Example("template_reciprocal_quad_hams.stim", _reciprocal(), template=True),
    Example("template_warmup_strength_cooldown.stim", _warmup(), template=True),
    Example("template_doublet_tibialis_anterior.stim", _doublet(), template=True),
    Example("template_custom_shape_gastrocnemius.stim", _custom_shape(), template=True),
    Example("template_foot_drop_peroneal.stim", _foot_drop(), template=True),
    Example("template_sets_quadriceps.stim", _sets(), template=True),
]
TEMPLATES = [e.name for e in TEMPLATE_COUNTS]

ALL_FILES = sorted(p.name for p in EXAMPLES.glob("*.stim"))
BY_NAME = {e.name: e for e in CLINICAL + TEMPLATE_COUNTS}


def _load(name):
    return stimscript.load(EXAMPLES / name)


def test_every_file_is_listed_here_as_clinical_or_template():
    assert sorted([e.name for e in CLINICAL] + TEMPLATES) == ALL_FILES


@pytest.mark.parametrize("example", CLINICAL + TEMPLATE_COUNTS, ids=lambda e: e.name)
def test_worked_counts_equal_the_compiled_schedule(example):
    proto = _load(example.name)
    for session, blocks in example.sessions.items():
        want_counts, want_us = count_blocks(blocks)
        sched = proto.compile(session=session)
        assert sched.counts() == want_counts, (example.name, session)
        assert sched.duration_us == want_us, (example.name, session)


# ---- header tables --------------------------------------------------------------------------------------

TABLE_HEAD = re.compile(r"^# parameter\s*\|\s*source says\s*\|\s*file uses\s*\|\s*note\s*$", re.M)
REQUIRED_ROWS = ["frequency", "pulse", "on/off", "ramps", "session length", "sessions", "weeks", "progression",
                 "intensity", "electrodes", "site"]


def _table_rows(text: str) -> dict[str, list[str]]:
    head = TABLE_HEAD.search(text)
    assert head, "no `parameter | source says | file uses | note` table in the header"
    rows = {}
    for line in text[head.end():].splitlines()[1:]:
        if not line.startswith("#") or "|" not in line:
            break
        cells = [c.strip() for c in line[1:].split("|")]
        if set(cells[0]) <= {"-", " "}:
            continue
        assert len(cells) == 4, line
        rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.parametrize("example", CLINICAL, ids=lambda e: e.name)
def test_clinical_header_has_the_parameter_table(example):
    text = (EXAMPLES / example.name).read_text(encoding="utf-8")
    rows = _table_rows(text)
    for name in REQUIRED_ROWS:
        assert name in rows, f"{example.name}: no `{name}` row"
        says, uses, note = rows[name]
        assert says and uses, f"{example.name}: `{name}` row has an empty cell"
        if says.startswith("not reported") or says.startswith("not in"):
            assert note, f"{example.name}: `{name}` is not reported but the note gives no assumption"
    assert re.search(r"^# Sources read:", text, re.M), f"{example.name}: no `Sources read` list"
    proto = _load(example.name)
    assert "template" not in proto.title.lower()


@pytest.mark.parametrize("example", CLINICAL, ids=lambda e: e.name)
def test_header_table_file_uses_matches_the_file(example):
    """The `file uses` column states what the file delivers: frequencies, plan, weeks and sites."""
    rows = _table_rows((EXAMPLES / example.name).read_text(encoding="utf-8"))
    proto = _load(example.name)
    for ch in proto.channels:
        hz = Fraction(ch.frequency_hz)
        assert f"{hz} Hz" in rows["frequency"][1], (ch.name, hz)
        assert ch.site in rows["site"][1], (ch.name, ch.site)
    plan = proto.plan
    word = "session" if plan.sessions == 1 else "sessions"
    assert f"plan {plan.sessions} {word} per {plan.per}" in rows["sessions"][1]
    assert re.match(rf"{plan.weeks}\b", rows["weeks"][1]), rows["weeks"]


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_are_marked(name):
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert text.startswith("# TEMPLATE"), name
    assert "(template)" in _load(name).title


# ---- every file: canonical and checked --------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_example_is_canonical_and_passes_check(name):
    from stimscript.dsl import format_text

    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert format_text(text) == text, f"{name} is not canonical: run `stimscript fmt --write examples/{name}`"
    proto = _load(name)  # the checker decides every rule on every week of the plan
    assert not proto.warnings, [w.code for w in proto.warnings]
    proto.compile(session=proto.plan.total_sessions if proto.plan else 1)


# ---- the README table and the header `# counts:` lines come from the compiled schedules -------------------


def _worked_sessions(name: str) -> list[int]:
    ex = BY_NAME.get(name)
    return sorted(ex.sessions) if ex else [1]


def _counts_text(name: str) -> list[str]:
    proto = _load(name)
    by_number = {ch.number: ch.name for ch in proto.channels}
    lines = []
    for session in _worked_sessions(name):
        sched = proto.compile(session=session)
        week = proto.week_of(session) if proto.plan else 1
        per = ", ".join(f"{by_number[n]} {c}" for n, c in sorted(sched.counts().items()))
        seconds = Fraction(sched.duration_us, S)
        lines.append(f"session {session} (week {week}): {per}; {seconds} s")
    return lines


def _readme_rows() -> str:
    out = ["| file | source | worked counts (pulses per channel; session duration) |", "| --- | --- | --- |"]
    for name in ALL_FILES:
        proto = _load(name)
        ref = proto.header.get("reference", "")
        out.append(f"| `{name}` | {ref} | {'<br>'.join(_counts_text(name))} |")
    return "\n".join(out)


BEGIN, END = "<!-- worked counts: generated by tests/test_examples.py -->", "<!-- end of worked counts -->"


def test_readme_counts_are_the_compiled_counts():
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    want = f"{head}{BEGIN}\n{_readme_rows()}\n{END}{tail}"
    if UPDATE and want != text:
        README.write_text(want, encoding="utf-8")
        text = want
    assert text == want, "examples/README.md worked counts differ from the compiled schedules " \
                         "(STIMSCRIPT_UPDATE_EXAMPLE_COUNTS=1 rewrites them)"


@pytest.mark.parametrize("name", ALL_FILES)
def test_header_counts_are_the_compiled_counts(name):
    path = EXAMPLES / name
    text = path.read_text(encoding="utf-8")
    want = [f"# counts: {line}" for line in _counts_text(name)]
    have = [line for line in text.splitlines() if line.startswith("# counts: ")]
    if UPDATE and have != want:
        lines = text.splitlines(keepends=True)
        idx = [i for i, line in enumerate(lines) if line.startswith("# counts: ")]
        assert idx, f"{name}: no `# counts:` line to rewrite"
        lines[idx[0]:idx[-1] + 1] = [w + "\n" for w in want]
        path.write_text("".join(lines), encoding="utf-8")
        have = want
    assert have == want, f"{name}: header counts differ (STIMSCRIPT_UPDATE_EXAMPLE_COUNTS=1 rewrites them)"
