"""The ``stimscript`` command: a click group whose sub-commands live in ``stimscript/commands/``.

Every command turns StimscriptError into ``FILE:LINE:COL: error[CODE]: ...`` on stderr and exit code 1;
no Python traceback reaches a user for bad input.

Start-up matters (an editor or CI checks files one process at a time): only the command that runs is
imported, ``--help`` lists the commands from :data:`SUMMARIES` without importing any of them, and heavy
libraries (numpy, rich, matplotlib) are imported by the commands that use them, not here.
"""
from __future__ import annotations

import importlib
import sys

import click

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


class LazyGroup(click.Group):
    """Imports a sub-command only when it is used, so ``stimscript check`` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str):
        if name not in COMMANDS:
            return None
        try:
            return self._load(name)
        except ImportError as exc:  # a broken install: say which command and why, never a traceback
            raise click.ClickException(f"the `{name}` command cannot start: {exc}") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from SUMMARIES (no command is imported to print it)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            summary = SUMMARIES.get(name)
            if summary is not None:
                rows.append((name, click.Command(name, help=summary).get_short_help_str(limit)))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    @staticmethod
    def _load(name: str):
        module, _, attr = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stimscript")
def cli() -> None:
    """Write, check, compile and run multi-channel NMES protocols."""


def main(argv: list[str] | None = None) -> int:
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
    sys.exit(main())
