"""`circuit-atlas check`: verify that every stored graph is whole and unchanged."""
from __future__ import annotations

import sys

import click

from circuit_atlas.cli import main


@main.command()
@click.option("--no-hashes", is_flag=True, help="Skip recomputing each graph's content hash (the slow part).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
def check(settings, no_hashes, quiet):
    """Check the store: each graph's node and edge counts and content hash (its id), nodes outside
    their graph, edges across graphs, NaN weights. One line per problem; exit status 1 if any.

    Opens the store read-only and writes nothing.

    Example:

    \b
        circuit-atlas --store atlas.db check
    """
    from tqdm import tqdm

    from circuit_atlas.store import StoreError, open_store
    from circuit_atlas.store.check import check_store

    show = not quiet and sys.stderr.isatty()
    progress = (lambda items, total: tqdm(items, total=total, unit="graph", desc="check")) if show else None
    try:
        with open_store(settings, read_only=True) as store:
            report = check_store(store, hashes=not no_hashes, progress=progress)
    except StoreError as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    for line in report.problems:
        click.echo(line)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
