"""docs/tutorial.md says what the program prints: every command shown there is run, in the tutorial's order,
against one records file, and its output is compared with the tutorial's (times, record ids and the records
file's path aside).

* A code block that starts with ``$ stimscript ...`` holds the command and what it prints.
* ``run --fast`` is shown as a terminal would show it: the live display's last picture, then the summary
  (produced here through the same display code on a recording console 110 columns wide).
* The ``run --realtime`` session is the one practice run that needs keys: it is replayed in virtual time with
  the same keys at the same session times (select channel 1, ``+`` at 4.3 s, ``s`` at 6.3 s); its screen
  picture (a tmux capture) is not compared, its summary, record and notes are.

``STIMSCRIPT_WRITE_TUTORIAL=1 python -m pytest tests/test_tutorial.py`` rewrites the outputs in the tutorial
from the program (then read the diff: the prose around them must still be true).
"""
from __future__ import annotations

import io
import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
SHOWN_DB = "/home/you/.local/share/stimscript/records.sqlite"
#: the keys of the real-time practice run, at session times (µs)
KEYS = ((4_300_000, "intensity_up", None, None, (1,)), (6_300_000, "stop"))

FENCE = re.compile(r"^(\s*)```\s*$")


def blocks(lines: list[str]) -> list[tuple[int, int, str, list[str]]]:
    """(first line, last line, indent, lines) of every fenced block (indented ones too), fences excluded."""
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, j = m.group(1), i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        out.append((i + 1, j, indent, [line[len(indent):] for line in lines[i + 1:j]]))
        i = j + 1
    return out


def normalise(text: str, db: str) -> str:
    text = text.replace(db, SHOWN_DB)
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?( ?[+-]\d\d:?\d\d| UTC)?", "<time>", text)
    text = re.sub(r"\b\d+\.\d{3} s\b", "<t> s", text)           # event log times (device clock)
    text = re.sub(r"#\d+", "#<id>", text)
    text = re.sub(r"(note|history) \d+", r"\1 <id>", text)
    text = text.replace("· real time", "· <pace>").replace("· simulated", "· <pace>")
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


class Session:
    """Runs the tutorial's commands in one folder with one records file, as a user would in a terminal."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.db = str(folder / "records.sqlite")
        self.last_summary = ""

    def run(self, command: str) -> str:
        args = shlex.split(command)
        assert args[0] == "stimscript", command
        if args[1] == "run" and "--session" not in args:
            return self._practice_run(args[2:])
        from stimscript.cli import cli

        if "my_protocol.stim" in args and not (self.folder / "my_protocol.stim").exists():
            # the tutorial's own edit: the TKA protocol with 5000 Hz instead of 50 Hz
            text = (ROOT / "examples" / "tka_quadriceps.stim").read_text(encoding="utf-8")
            (self.folder / "my_protocol.stim").write_text(text.replace("frequency 50 Hz", "frequency 5000 Hz"),
                                                          encoding="utf-8")
        result = CliRunner().invoke(cli, args[1:], prog_name="stimscript",
                                    env={"STIMSCRIPT_DB": self.db, "COLUMNS": "110"}, catch_exceptions=False)
        return result.output

    def _practice_run(self, args: list[str]) -> str:
        """``run`` in a 110-column terminal: the live display's last picture, then the summary."""
        from rich.console import Console

        import stimscript
        from stimscript.commands.options import parse_sets
        from stimscript.commands.run import next_session
        from stimscript.live import run_session, summary
        from stimscript.runtime import SessionController

        file = args[0]
        sets = tuple(args[i + 1] for i, a in enumerate(args) if a == "--set")
        patient = next((args[i + 1] for i, a in enumerate(args) if a == "--patient"), None)
        realtime = "--realtime" in args
        proto = stimscript.load(file)
        params = parse_sets(sets)
        said: list[str] = []
        session = next_session(proto, patient, self.db, practice=True, echo=said.append) if patient else 1
        sched = proto.compile(session=session, params=params)
        ctl = SessionController()
        if realtime:
            for t, action, *rest in KEYS:
                ctl.at(t, action, *rest)
        ranges = {n: proto.safe_range(n, session=session, params=params) for n, p in proto.params.items()
                  if p.range is not None}
        con = Console(record=True, width=110, file=io.StringIO(), force_terminal=True, color_system=None)
        rec, info = run_session(sched, device="loopback", realtime=False, db=self.db, patient_id=patient,
                                param_ranges=ranges, live=True, keys=False, console=con, controller=ctl)
        self.last_summary = summary(rec, info)
        screen = con.export_text()
        last = screen[screen.rindex("╭─"):].rstrip("\n")   # the display redraws in place: its last picture stays
        return "\n".join(said + [last, self.last_summary])


def pairs(lines: list[str]):
    """(command, expected lines, (first, last, indent, lines to skip) of the block that holds them) in document
    order; the output of a command shown alone is the block that follows it; a summary shown on its own
    belongs to the run before it; the real-time run is run but its screen picture is not compared
    (expected None)."""
    found = blocks(lines)
    k = 0
    while k < len(found):
        first, last, indent, body = found[k]
        text = [line for line in body]
        if text and text[0].startswith("$ stimscript"):
            command = text[0][2:]
            expected = text[1:]
            where = (first, last, indent, 1)
            if not expected and k + 1 < len(found) and "--realtime" not in command:
                k += 1
                first, last, indent, body = found[k]
                expected, where = list(body), (first, last, indent, 0)
            elif not expected and "--realtime" in command:
                k += 1   # the tmux picture that follows: not compared (the run itself is replayed)
                expected = None
            yield command, expected, where
        elif text and text[0].startswith("Session summary:"):
            yield None, text, (first, last, indent, 0)
        k += 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tutorial")
    (folder / "examples").symlink_to(ROOT / "examples")
    return folder


def test_the_tutorial_shows_what_the_program_prints(folder, monkeypatch):
    monkeypatch.chdir(folder)
    monkeypatch.setenv("STIMSCRIPT_DB", str(folder / "records.sqlite"))
    lines = TUTORIAL.read_text(encoding="utf-8").splitlines()
    session = Session(folder)
    write = os.environ.get("STIMSCRIPT_WRITE_TUTORIAL") == "1"
    edits, mismatches, compared = [], [], 0
    for command, expected, (first, last, indent, skip) in pairs(lines):
        got = session.run(command) if command is not None else session.last_summary
        if expected is None:
            continue
        compared += 1
        if normalise(got, session.db) != normalise("\n".join(expected), session.db):
            mismatches.append(f"--- docs/tutorial.md:{first + skip + 1}: {command or '(the summary above)'}\n"
                              f"expected:\n{chr(10).join(expected)}\n\nthe program prints:\n{got}")
            shown = got.replace(session.db, SHOWN_DB).strip("\n").splitlines()
            edits.append((first + skip, last, [indent + line.rstrip() if line.strip() else "" for line in shown]))
    if write and edits:
        for a, b, new in sorted(edits, reverse=True):
            lines[a:b] = new
        TUTORIAL.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert compared >= 12, "the tutorial lost its examples"
    assert not mismatches, "\n\n".join(mismatches)
