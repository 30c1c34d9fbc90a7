"""Helpers every sub-command shares: turning errors into diagnostics on stderr with exit code 1."""
from __future__ import annotations

import functools
import sys
from typing import Callable

import click

from ..errors import StimscriptError


def report(exc: BaseException) -> None:
    """Print a StimscriptError the way compilers do (never a traceback)."""
    if hasattr(exc, "render"):
        text = exc.render()
    else:
        text = str(exc)
        if not text.startswith(("error", "warning")):
            text = f"error: {text}"
    click.echo(text, err=True)


def handle_errors(fn: Callable) -> Callable:
    """Decorator: StimscriptError -> rendered message + exit 1; OSError -> 'error: ...' + exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StimscriptError as exc:
            report(exc)
            sys.exit(1)
        except BrokenPipeError:  # stdout closed by its reader: stimscript.cli ends quietly
            raise
        except OSError as exc:   # one line naming the file (or the output that cannot be written), exit 1
            from ..cli import unhandled_os_error

            sys.exit(unhandled_os_error(exc))

    return wrapper
