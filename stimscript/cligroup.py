"""The click group behind ``stimscript`` (imported by stimscript/cli.py on first use: a plain
``stimscript check FILE`` runs without click)."""
from __future__ import annotations

import importlib
import sys

import click

from .cli import COMMANDS, SUMMARIES, closed_stdout


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

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:   # before click's own handler, which would exit 1
            sys.exit(closed_stdout())

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
