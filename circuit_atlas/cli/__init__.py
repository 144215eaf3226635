"""The `circuit-atlas` command: a thin click layer over the library, one module per area.

Each area module (ingest, trace, query, jobs, audit, ...) defines its commands and registers them on
`main` below. Heavy libraries (torch, transformers, the database engines) are imported inside the
command functions so that `circuit-atlas --help` stays fast.
"""
from __future__ import annotations

import dataclasses
import importlib
import os

import click

from circuit_atlas.settings import Settings

# Area modules that add commands to `main`; each is imported for its side effect of registering.
AREAS = ["ingest", "cypher", "trace", "query", "jobs", "audit", "demo", "labels", "graph", "check", "manage",
         "intervene"]


# The options every command accepts, before or after its name (`circuit-atlas --store x query ...` or
# `circuit-atlas query ... --store x`; the later one wins): (flags, Settings field, click keywords).
GLOBAL_OPTIONS = [
    (["--store"], "store", dict(
        metavar="PATH|bolt://…", help="Graph store: a file for the embedded database (created by the first "
                                      "ingest), or a Neo4j URI. Default: $CIRCUIT_ATLAS_STORE, else ./atlas.db")),
    (["--lock-timeout"], "lock_timeout_s", dict(
        type=click.FloatRange(min=0), metavar="SECONDS",
        help="How long to wait while another process holds the embedded store (an ingest, a worker, a long "
             "query). Default: $CIRCUIT_ATLAS_LOCK_TIMEOUT, else 60")),
]


def _use_lock_timeout(seconds: float) -> None:
    # The flag is the variable's spelling: every store open of this command reads it (store.embedded
    # EmbeddedOptions), and so do the worker processes that `workers start` runs.
    os.environ["CIRCUIT_ATLAS_LOCK_TIMEOUT"] = repr(seconds)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", envvar="CIRCUIT_ATLAS_STORE", default=None, **GLOBAL_OPTIONS[0][2])
@click.option("--lock-timeout", "lock_timeout", default=None, **GLOBAL_OPTIONS[1][2])
@click.version_option(package_name="circuit-atlas")
@click.pass_context
def main(ctx: click.Context, store: str | None, lock_timeout: float | None) -> None:
    """circuit-atlas: trace, store and query attribution graphs by the thousand.

    --store and --lock-timeout may also follow the command. Examples:

    \b
        circuit-atlas --store graphs.db ingest graphs/
        circuit-atlas query hubs-by-graphs --store graphs.db
    """
    try:
        ctx.obj = Settings.load(store=store, lock_timeout_s=lock_timeout)
    except ValueError as e:                   # a malformed setting in the environment or config file
        raise click.ClickException(str(e)) from None
    if lock_timeout is not None:
        _use_lock_timeout(lock_timeout)


def _late_option(field: str):
    """The callback of a global option given after the command name: it updates the Settings that
    `main` made (commands read them with @click.pass_obj when they run, after all options are parsed)."""
    def callback(ctx: click.Context, param: click.Parameter, value) -> None:
        if value is None:
            return
        ctx.obj = dataclasses.replace(ctx.obj or Settings.load(), **{field: value})
        if field == "lock_timeout_s":
            _use_lock_timeout(value)
    return callback


def _accept_global_options(group: click.Group) -> None:
    for command in group.commands.values():
        taken = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for flags, field, kwargs in GLOBAL_OPTIONS:
            if not taken & set(flags):
                command.params.append(click.Option(flags, default=None, expose_value=False,
                                                   callback=_late_option(field), **kwargs))
        if isinstance(command, click.Group):
            _accept_global_options(command)


for _area in AREAS:
    try:
        importlib.import_module(f"circuit_atlas.cli.{_area}")
    except ModuleNotFoundError as e:  # an area not written yet
        if e.name != f"circuit_atlas.cli.{_area}":
            raise
_accept_global_options(main)
