"""The `dosewise` command line: an entry point that builds Settings and passes plain values down.

Each command imports its package lazily so that `dosewise --help` stays instant.
"""

from __future__ import annotations

import typer

from settings import Settings

app = typer.Typer(
    name="dosewise",
    help="Offline drug-dosing answers whose every number is verified against its source.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    return Settings()


# Commands are added below, one function each (ingest, stats, ask, check, eval, bench, ...).
