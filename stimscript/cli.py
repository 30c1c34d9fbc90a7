"""The ``stimscript`` command: a click group whose sub-commands live in ``stimscript/commands/``.

Every command turns StimscriptError into ``FILE:LINE:COL: error[CODE]: ...`` on stderr and exit code 1;
no Python traceback reaches a user for bad input.
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
    "history": "stimscript.commands.history:history",
    "note": "stimscript.commands.note:note",
    "sheet": "stimscript.commands.sheet:sheet",
}


class LazyGroup(click.Group):
    """Imports a sub-command only when it is used, so ``stimscript check`` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, name: str):
        return self._load(name)

    @staticmethod
    def _load(name: str):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return None


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
