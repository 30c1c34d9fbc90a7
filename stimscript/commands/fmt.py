"""``stimscript fmt FILE... [--check | --write] [--diff]``: print or apply the canonical form."""
from __future__ import annotations

import difflib
import sys

import click

from ..errors import StimscriptError
from ._common import report


def _read(path: str) -> bytes:
    from ..inputs import MAX_INPUT_BYTES, InputError, read_input

    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(f"error: standard input: more than {MAX_INPUT_BYTES:,} bytes; a protocol may have at "
                             f"most {MAX_INPUT_BYTES:,} bytes")
        return data
    return read_input(path)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 and list the files that are not canonical.")
@click.option("--write", "-w", is_flag=True, help="Rewrite the files in place (UTF-8, LF line ends, no BOM).")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff instead of the formatted text.")
def fmt(files: tuple[str, ...], check: bool, write: bool, show_diff: bool) -> None:
    """Print protocol FILES in the canonical StimScript form.

    \b
    With one FILE (or - for stdin) the canonical text goes to stdout.
    --write rewrites the files in place; --check only reports the files
    that are not canonical (exit 1 when there are any).

    The canonical form: `stimscript 1` first, items in source order separated
    by blank lines, 4-space indentation, one statement per line, `{` on the
    statement's line, canonical units (us, uA, uC; no µ), exact decimals,
    the fewest parentheses, `with` overrides before `after`.

    \b
    Comments: the parser drops them; fmt re-attaches them from the file's
    text. A comment on a line of its own stays before the statement (or
    closing brace) that follows it; a comment after code stays at the end
    of the first line of the first statement of that line. Blank lines
    inside blocks are not kept. parse(fmt(x)) == parse(x) always holds.

    Exit codes: 0 fine; 1 a file does not parse (the error is printed as
    FILE:LINE:COL: error[CODE]: ...) or, with --check, is not canonical.
    """
    from ..dsl.formatter import format_text
    from ..dsl.parser import decode

    if check and write:
        raise click.UsageError("--check and --write exclude each other")
    if len(files) > 1 and not (check or write or show_diff):
        raise click.UsageError("give --write, --check or --diff to format more than one file")
    if write and "-" in files:
        raise click.UsageError("cannot --write standard input")

    failed = False
    unformatted: list[str] = []
    for path in files:
        name = "<stdin>" if path == "-" else path
        try:
            data = _read(path)
            formatted = format_text(data, name)
            original = decode(data, name)
        except StimscriptError as exc:
            report(exc)
            failed = True
            continue
        except OSError as exc:
            click.echo(f"{name}: error: cannot read file: {exc.strerror or exc}", err=True)
            failed = True
            continue
        canonical = original == formatted
        if show_diff and not canonical:
            text = "".join(difflib.unified_diff(
                original.splitlines(keepends=True), formatted.splitlines(keepends=True),
                fromfile=name, tofile=name + " (formatted)"))
            click.echo(text, nl=False)
        if check:
            if not canonical:
                unformatted.append(name)
                click.echo(name)
        elif write:
            if not canonical:
                try:
                    with open(path, "w", encoding="utf-8", newline="\n") as fh:
                        fh.write(formatted)
                except OSError as exc:
                    click.echo(f"{name}: error: cannot write file: {exc.strerror or exc}", err=True)
                    failed = True
                    continue
                click.echo(f"reformatted {name}", err=True)
        elif not show_diff:
            click.echo(formatted, nl=False)
    if check and unformatted:
        n = len(unformatted)
        click.echo(f"{n} file{'s' if n != 1 else ''} would be reformatted", err=True)
        failed = True
    sys.exit(1 if failed else 0)
