"""``stimscript check FILE...``: parse + check every file; exit 0 when all are fine, 1 otherwise.

An editor or a CI job runs ``check`` once per file, so its start-up is most of what a user waits for, and
click's import alone costs about as much as checking a small protocol. This module therefore imports no
click: :func:`check_files` does the work and :func:`fast_args` reads the plain command lines (files,
``--strict``, ``--quiet``/``-q``) that ``stimscript.cli.main`` runs without click. Any other command line
(``--help``, ``--device``, ``--mode``, an unknown option, a directory, no file) goes through the click
command, built on first access (:func:`__getattr__`), which calls the same :func:`check_files`.
tests/test_check_fast_path.py keeps both readings of a command line equal.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

HELP = """Parse and check protocol FILES against the safety rules and the device profile.

    Every session of the plan is checked (each week's progression). Errors and warnings are printed as
    FILE:LINE:COL: error[CODE]: message. Exit code 0: all files fine; 1: any error (or warning with --strict).
    With a device that times pulses itself (p24, rehamove3) what it cannot do is an error (D001...) and its
    fidelity report for session 1 is printed.
    """

#: the flags the click-free path reads, and the parameter each one sets
_FLAGS = {"--strict": "strict", "--quiet": "quiet", "-q": "quiet"}


def _echo(text: str, err: bool = False) -> None:
    """One line to stdout or stderr (as click.echo: flushed; unencodable characters replaced)."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:   # started with the stream closed (``>&-``): nothing to write to, as click.echo
        return
    try:
        stream.write(text + "\n")
    except UnicodeEncodeError:
        enc = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(enc, "replace").decode(enc) + "\n")
    stream.flush()


def fast_args(args: list[str]) -> Optional[dict[str, Any]]:
    """The parameters of ``stimscript check ARGS`` when ARGS are only files and the flags in ``_FLAGS``
    (what click would make of them); None for anything else, which the click command then reads."""
    params: dict[str, Any] = {"files": [], "device": None, "mode": None, "strict": False, "quiet": False}
    for arg in args:
        if arg in _FLAGS:
            params[_FLAGS[arg]] = True
        elif arg.startswith("-") or os.path.isdir(arg):
            return None   # an option click reads (or reports), or a directory click refuses
        else:
            params["files"].append(arg)
    if not params["files"]:
        return None
    params["files"] = tuple(params["files"])
    return params


def quick_start() -> None:
    """Import what checking needs, then move every object built so far out of the garbage collector's way.

    Start-up builds many long-lived objects (modules, classes, the parser tables); each collection while they
    pile up walks all of them again, which costs a plain check about a fifth of its time. Collection is off
    while importing and the survivors are frozen (``gc.freeze``: never collected, as modules are not)
    before the files are read; objects made after that are collected as usual.
    """
    import gc

    gc.disable()
    try:
        from ..compiler import protocol, safety  # noqa: F401 - imported here, before the freeze
        from ..dsl.parser import get_fast_parser

        get_fast_parser()
    finally:
        gc.freeze()
        gc.enable()


def _report(exc: BaseException) -> None:
    text = exc.render() if hasattr(exc, "render") else str(exc)
    if not hasattr(exc, "render") and not text.startswith(("error", "warning")):
        text = f"error: {text}"
    _echo(text, err=True)


def check_files(files: tuple[str, ...], device: Optional[str], mode: Optional[str], strict: bool,
                quiet: bool) -> int:
    """Check every file; the exit code (0: all fine; 1: any error, or a warning with ``strict``).

    The cyclic garbage collector is paused while a file is read, checked and reported (and resumed between
    files, so a long list never holds on to cyclic garbage): what checking builds lives until the file is
    reported and reference counting frees it. Paused, the checker's own pause
    (``compiler.checker.paused_gc``) has nothing to do; running, it would first ask ``gc.get_freeze_count()``,
    which walks every object :func:`quick_start` froze, one cache miss each (about 0.4 ms, 1-2 % of a small
    file's check)."""
    import gc

    failed = False
    for path in files:
        collecting = gc.isenabled()
        gc.disable()
        try:
            failed = _check_file(path, device, mode, strict, quiet) or failed
        finally:
            if collecting:
                gc.enable()
    return 1 if failed else 0


def _check_file(path: str, device: Optional[str], mode: Optional[str], strict: bool, quiet: bool) -> bool:
    """Check one file and print what :func:`check_files` prints for it; whether it failed."""
    from .. import load
    from ..errors import StimscriptError

    try:
        profile = None
        if device is not None:
            from .options import device_profile

            profile = device_profile(device)
        proto = load(path, device=profile)
        errors: list = []
        fidelity_report = None
        if device is not None:
            from ._fidelity import device_findings

            errors, fidelity_report = device_findings(proto, device, mode)
    except StimscriptError as exc:
        _report(exc)
        return True
    except BrokenPipeError:
        raise
    except OSError as exc:
        _echo(f"{path}: error: cannot read file: {exc.strerror or exc}", err=True)
        return True
    for d in errors:
        _echo(d.render(), err=True)
    if errors:
        return True
    warnings = list(getattr(proto, "warnings", ()))
    for w in warnings:
        _echo(w.render(), err=True)
    if strict and warnings:
        _echo(f"{path}: {len(warnings)} warning(s) treated as errors (--strict)", err=True)
        return True
    if not quiet:
        n_channels = len(proto.channels)
        sessions = len(list(proto.sessions()))
        note = f", {len(warnings)} warning(s)" if warnings else ""
        _echo(f"{path}: ok ({n_channels} channel{'s' if n_channels != 1 else ''}, "
              f"{sessions} session{'s' if sessions != 1 else ''} checked{note})")
        if fidelity_report is not None:
            _echo(fidelity_report.render())
    return False


def _click_command():
    import click

    from .options import device_option, mode_option

    @click.command(help=HELP)
    @click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
    @device_option
    @mode_option
    @click.option("--strict", is_flag=True, help="Treat warnings as errors.")
    @click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
    def check(files: tuple[str, ...], device: str | None, mode: str | None, strict: bool, quiet: bool) -> None:
        sys.exit(check_files(files, device, mode, strict, quiet))

    return check


def __getattr__(name: str) -> Any:
    """``check``, the click command (built on first use: the click-free path never pays for click)."""
    if name == "check":
        command = _click_command()
        globals()["check"] = command
        return command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
