"""`circuit-atlas ingest`: load graph files into the store."""
from __future__ import annotations

import sys

import click

from circuit_atlas.cli import main


@main.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--tag", "-t", "tags", multiple=True, metavar="KEY=VALUE", help="Tag every graph (repeatable).")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="CSV (a 'file' column + one column per tag) or JSONL ({\"file\":…, \"tags\":{…}}) of per-file tags.")
@click.option("--transcoders", metavar="NAME", default=None,
              help="The transcoder set of graphs whose files name none (no metadata.scan), e.g. "
                   "mntss/gemma-scope-transcoders; without it their features meet those of every other such graph.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--neo4j-import", "neo4j_home", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="First load of a new Neo4j database, with neo4j-admin instead of Bolt: DIR is the instance "
                   "folder of scripts/neo4j.sh (--dir), its server stopped; start it afterwards.")
@click.option("--overwrite", is_flag=True, help="With --neo4j-import: replace an existing database (all its data).")
@click.pass_obj
def ingest(settings, paths, tags, manifest, transcoders, quiet, neo4j_home, overwrite):
    """Load graph files (.json, .json.gz, .pt, .pt.gz), folders (recursively) and globs into the store.

    Graphs already stored are skipped (ids are content hashes) but get the new tags. A bad file gets
    one error line and the rest still load; the exit status is 1 if any file failed.

    Example:

    \b
        circuit-atlas ingest graphs/ extra/*.json --tag set=capitals --manifest langs.csv

    A first load into Neo4j can skip Bolt (neo4j-admin database import, many times faster); it only
    makes a new database, with the server stopped (then `scripts/neo4j.sh start --dir .neo4j`):

    \b
        circuit-atlas ingest graphs/ --neo4j-import .neo4j
    """
    from circuit_atlas.ingest import IngestOptions, ManifestError, import_paths, ingest_paths
    from circuit_atlas.store import StoreError
    from circuit_atlas.store.neo4j_import import Neo4jImportError

    tag_map = {}
    for t in tags:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{t!r}: expected key=value, e.g. lang=fr", param_hint="--tag")
        tag_map[key] = value
    log = lambda line: click.echo(line, err=True)
    try:
        if neo4j_home:
            report = import_paths(neo4j_home, paths, tags=tag_map, manifest=manifest, overwrite=overwrite, log=log,
                                  transcoders=transcoders)
        else:
            report = ingest_paths(settings, paths, tags=tag_map, manifest=manifest,
                                  options=IngestOptions(progress=not quiet and sys.stderr.isatty()), log=log,
                                  transcoders=transcoders)
    except (StoreError, ManifestError, Neo4jImportError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
