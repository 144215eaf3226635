"""`circuit-atlas cypher`: run one read-only Cypher query against the store."""
from __future__ import annotations

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import emit, output_options, parse_params


@main.command()
@click.argument("query")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="Query parameter $KEY; VALUE is JSON when it parses (3, 0.5, true, [1,2]), else a string.")
@click.option("--timeout", "timeout_s", type=float, default=60.0, show_default=True, help="Seconds before the query is stopped.")
@click.option("--max-rows", type=int, default=100_000, show_default=True, help="Fail if the query returns more rows.")
@output_options
@click.pass_obj
def cypher(settings, query, params, timeout_s, max_rows, fmt):
    """Run a read-only Cypher QUERY; writes are refused by the database.

    Example:

    \b
        circuit-atlas cypher 'MATCH (g:Graph) WHERE g.n_edges > $n RETURN g.slug AS slug' \\
            -p n=1000 --format json
    """
    from circuit_atlas.store import StoreError, open_store

    try:
        with open_store(settings.store, read_only=True) as store:
            rows = store.query(query, parse_params(params), timeout_s=timeout_s, max_rows=max_rows)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    emit(rows, fmt)
