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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
def ingest(settings, paths, tags, manifest, quiet):
    """Load graph files (.json, .json.gz, .pt, .pt.gz), folders (recursively) and globs into the store.

    Graphs already stored are skipped (ids are content hashes) but get the new tags. A bad file gets
    one error line and the rest still load; the exit status is 1 if any file failed.

    Example:

    \b
        circuit-atlas ingest graphs/ extra/*.json --tag set=capitals --manifest langs.csv
    """
    from circuit_atlas.ingest import IngestOptions, ManifestError, ingest_paths
    from circuit_atlas.store import StoreError

    tag_map = {}
    for t in tags:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{t!r}: expected key=value, e.g. lang=fr", param_hint="--tag")
        tag_map[key] = value
    log = lambda line: click.echo(line, err=True)
    try:
        report = ingest_paths(settings.store, paths, tags=tag_map, manifest=manifest,
                              options=IngestOptions(progress=not quiet and sys.stderr.isatty()), log=log)
    except (StoreError, ManifestError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
