"""The ``stimscript`` command: a click group whose sub-commands live in ``stimscript/commands/``.

Every command turns StimscriptError into ``FILE:LINE:COL: error[CODE]: ...`` on stderr and exit code 1;
no Python traceback reaches a user for bad input.

Start-up matters (an editor or CI checks files one process at a time): only the command that runs is
imported, ``--help`` lists the commands from :data:`SUMMARIES` without importing any of them, and heavy
libraries (numpy, rich, matplotlib) are imported by the commands that use them, not here. A plain
``stimscript check FILE...`` does not even import click (see stimscript/commands/check.py).

A closed stdout (``stimscript devices | head -1``) ends the command quietly with exit code 141, as a
process ended by SIGPIPE does, instead of an error message.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

#: command name -> "module:function" (each module defines one click command)
COMMANDS = {
    "check": "stimscript.commands.check:check",
    "fmt": "stimscript.commands.fmt:fmt",
    "info": "stimscript.commands.info:info",
    "compile": "stimscript.commands.compile:compile_cmd",
    "plot": "stimscript.commands.plot:plot",
    "run": "stimscript.commands.run:run",
    "devices": "stimscript.commands.devices:devices",
    "emulate": "stimscript.commands.emulate:emulate",
    "history": "stimscript.commands.history:history",
    "note": "stimscript.commands.note:note",
    "void": "stimscript.commands.void:void",
    "sheet": "stimscript.commands.sheet:sheet",
    "export": "stimscript.commands.export:export",
}

#: command name -> the first paragraph of its help, shown by ``stimscript --help`` without importing the
#: command (tests/test_cli_startup.py keeps these equal to the commands' own help). A command missing here
#: is imported to describe itself.
SUMMARIES = {
    "check": "Parse and check protocol FILES against the safety rules and the device profile.",
    "fmt": "Print protocol FILES in the canonical StimScript form.",
    "info": "Show channels, sites, electrodes, pulses, charge per phase, densities, pulse counts and duration.",
    "compile": "Compile FILE to a pulse schedule (integer µs / µA) and save it.",
    "plot": "Plot one session of FILE: envelope per channel in mA, block frequencies, one contraction, one pulse.",
    "run": "Run one session of FILE on a device, show it live and keep its record.",
    "devices": "List registered device drivers and what they report.",
    "emulate": "Serve an emulated ScienceMode MODEL on a new pseudo-terminal (its path is the first output line).",
    "history": "List treatment records (oldest first), or show record ID in detail with its event log.",
    "note": "Add a note to session record ID (the id column of `stimscript history`).",
    "void": "Mark session record ID void: it is kept (with the reason, time and operator) and hidden from "
            "`stimscript history` unless --all. Nothing is deleted.",
    "sheet": "Write a printable setup sheet (HTML) for one session of FILE.",
    "export": "Export what recorded session ID delivered, rebuilt and checked, for research tools.",
}


def closed_stdout() -> int:
    """Exit code 141 (128 + SIGPIPE) after stdout was closed by its reader; stdout is pointed at the null
    device so that flushing it at exit does not fail again."""
    _stdout_to_devnull()
    return 141


def unhandled_os_error(exc: OSError) -> int:
    """Exit code 1 after an OSError no command handled, typically writing the output (stdout redirected to a
    full disk or a failing device): one line on stderr, never a traceback. When stdout cannot be flushed it is
    pointed at the null device, so that flushing it again at exit neither fails nor prints a second error."""
    where = f"{exc.filename}: " if exc.filename else ""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        _stdout_to_devnull()
        where = where or "cannot write the output: "
    try:
        if sys.stderr is not None:
            sys.stderr.write(f"error: {where}{exc.strerror or exc}\n")
            sys.stderr.flush()
    except (OSError, ValueError):   # stderr is gone too: the exit code says it
        pass
    return 1


def _stdout_to_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file (a test's capture) or is closed
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); its exit code."""
    return _dispatch(sys.argv[1:] if argv is None else list(argv))[0]


def entry() -> NoReturn:
    """The ``stimscript`` program (the console script, and ``python -m stimscript.cli``): :func:`main`, then
    the end of the process.

    A click-free ``check`` (stimscript/commands/check.py) leaves nothing to clean up: its files are closed and
    it starts no thread, database, temporary file or exit handler. After flushing its output the process then
    ends at once (``os._exit``) instead of tearing down every module and object it imported, about a twentieth
    of a small file's check, which an editor or a CI job pays once per run; unless someone registered an exit
    handler all the same (a coverage tool, a profiler, a site hook), which is then run by an ordinary exit.
    Every other command ends as Python programs do (``sys.exit``: exit handlers, finalizers, flushing)."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:   # started with the stream closed (``>&-``): what goes there is dropped
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
    code, plain = _dispatch(sys.argv[1:])
    if plain and _no_exit_handlers():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            os._exit(closed_stdout())
        except OSError as exc:   # e.g. stdout on a full disk: said, and a failure even when the check passed
            os._exit(unhandled_os_error(exc) or code)
        os._exit(code)
    sys.exit(code)


def _no_exit_handlers() -> bool:
    """Whether nothing waits for the end of the interpreter (``atexit``; on an interpreter that cannot tell,
    the ordinary exit is taken)."""
    import atexit

    count = getattr(atexit, "_ncallbacks", None)
    return count is not None and count() == 0


def _dispatch(args: list[str]) -> tuple[int, bool]:
    """The exit code of command line ``args``, and whether it was a click-free ``check`` that ended plainly
    (nothing left to clean up: see :func:`entry`)."""
    try:
        if args[:1] == ["check"]:
            from .commands.check import check_files, fast_args, quick_start

            params = fast_args(args[1:])
            if params is not None:
                quick_start()
                return check_files(**params), True
        return _main_click(args), False
    except BrokenPipeError:
        return closed_stdout(), False
    except OSError as exc:
        return unhandled_os_error(exc), False
    except KeyboardInterrupt:
        return 130, False


def __getattr__(name: str) -> Any:
    """``cli`` (the click group) and ``LazyGroup`` from stimscript/cligroup.py, imported on first access."""
    if name in ("cli", "LazyGroup"):
        from . import cligroup

        return getattr(cligroup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _main_click(argv: list[str]) -> int:
    import click

    from .cligroup import cli

    try:
        rv = cli.main(args=argv, prog_name="stimscript", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else 1
    except KeyboardInterrupt:
        return 130
    return int(rv or 0)


if __name__ == "__main__":  # pragma: no cover
    entry()
