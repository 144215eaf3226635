"""`circuit-atlas cypher`: run one read-only Cypher query against the store."""
from __future__ import annotations

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import emit, output_options, parse_params
from circuit_atlas.settings import DEFAULT_MAX_MEMORY, DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S


@main.command()
@click.argument("query")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="Query parameter $KEY. VALUE is JSON when it is exactly one JSON value (3, 0.5, true, null, "
                   "\"text\", [1,2], {\"a\": 1}), else the text itself. Every parameter the query uses must be "
                   "given, and only those.")
@click.option("--param-str", "param_strs", multiple=True, metavar="KEY=VALUE",
              help="Query parameter $KEY as the text VALUE, never read as JSON (-p id=42 is a number, "
                   "--param-str id=42 the string \"42\").")
@click.option("--timeout", "timeout_s", type=float, default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds before the query is stopped (more than 0).")
@click.option("--max-rows", type=int, default=DEFAULT_MAX_ROWS, show_default=True,
              help="Fail if the query returns more rows.")
@click.option("--max-memory", default=DEFAULT_MAX_MEMORY, show_default=True, metavar="SIZE",
              help="Memory the query process may use, e.g. 512M or 4G; its rows may take a quarter of it.")
@output_options
@click.pass_obj
def cypher(settings, query, params, param_strs, timeout_s, max_rows, max_memory, fmt):
    """Run a read-only Cypher QUERY.

    Only reading clauses are admitted: MATCH, OPTIONAL MATCH, WITH, UNWIND, WHERE, RETURN, ORDER BY,
    SKIP, LIMIT, UNION, read subqueries and CALL of read-only procedures (e.g. show_tables() on the
    embedded store, db.labels() on Neo4j); anything else is refused before it reaches the database,
    and the database runs the query read-only as well.

    Example:

    \b
        circuit-atlas cypher 'MATCH (g:Graph) WHERE g.n_edges > $n RETURN g.slug AS slug' \\
            -p n=1000 --format json
    """
    from circuit_atlas.store import StoreError, open_store

    values = parse_params(params, param_strs)
    try:
        with open_store(settings, read_only=True) as store:
            rows = store.query(query, values, timeout_s=timeout_s, max_rows=max_rows, max_memory=max_memory)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    emit(rows, fmt)
