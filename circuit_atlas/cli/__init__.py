"""The `circuit-atlas` command: a thin click layer over the library, one module per area.

Each area module (ingest, trace, query, jobs, audit, ...) defines its commands and registers them on
`main` below. Heavy libraries (torch, transformers, the database engines) are imported inside the
command functions so that `circuit-atlas --help` stays fast.
"""
from __future__ import annotations

import importlib

import click

from circuit_atlas.settings import Settings

# Area modules that add commands to `main`; each is imported for its side effect of registering.
AREAS = ["ingest", "cypher", "trace", "query", "jobs", "audit", "demo", "labels", "graph"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", envvar="CIRCUIT_ATLAS_STORE", default=None, metavar="PATH|bolt://…",
              help="Graph store: a directory for the embedded database, or a Neo4j URI. "
                   "Default: $CIRCUIT_ATLAS_STORE, else ./atlas.db")
@click.version_option(package_name="circuit-atlas")
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """circuit-atlas: trace, store and query attribution graphs by the thousand."""
    ctx.obj = Settings.load(store=store)


for _area in AREAS:
    try:
        importlib.import_module(f"circuit_atlas.cli.{_area}")
    except ModuleNotFoundError as e:  # an area not written yet
        if e.name != f"circuit_atlas.cli.{_area}":
            raise
