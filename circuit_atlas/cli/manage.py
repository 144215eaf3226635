"""`circuit-atlas delete | tag | untag`: remove graphs, or change their tags, keeping the aggregates exact."""
from __future__ import annotations

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import emit, parse_params

_select = [
    click.argument("selectors", nargs=-1, metavar="[ID|SLUG|KEY=VALUE]..."),
    click.option("--cypher", metavar="QUERY", help="Also the graphs a read-only query names (a `gid` column)."),
    click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="A parameter of --cypher."),
]


def _selection(f):
    for option in reversed(_select):
        f = option(f)
    return f


def _run(settings, selectors, cypher, params, action):
    """Open the store read-write, select the graphs, run `action(store, gids)`; errors as one line."""
    from circuit_atlas.queries import QueryError
    from circuit_atlas.queries.views import select_graphs
    from circuit_atlas.store import StoreError, open_store

    if not selectors and cypher is None:
        raise click.UsageError("name the graphs: ids, slugs, tags key=value, or --cypher")
    try:
        with open_store(settings) as store:
            gids = select_graphs(store, selectors, cypher, parse_params(params))
            return action(store, gids)
    except (QueryError, StoreError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None


def _tags(pairs, what: str) -> dict[str, str]:
    out = {}
    for t in pairs:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{t!r}: expected key=value, e.g. split=test", param_hint=what)
        out[key] = value
    return out


@main.command()
@_selection
@click.option("--dry-run", is_flag=True, help="List the graphs it would delete; delete nothing.")
@click.pass_obj
def delete(settings, selectors, cypher, params, dry_run):
    """Delete graphs: by id, slug, tag (key=value: every graph carrying it) or a query.

    Their nodes, edges and strong paths go, so do tags and features no other graph has, and their
    share of every cross-graph aggregate; nothing else changes. Atomic on the embedded store (all the
    named graphs or none); graph by graph on Neo4j.

    Example:

    \b
        circuit-atlas delete set=pilot --dry-run
        circuit-atlas delete dallas-austin-llamma 3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6
        circuit-atlas delete --cypher "MATCH (g:Graph) WHERE g.n_edges < 100 RETURN g.id AS gid"
    """
    def action(store, gids):
        if dry_run:
            rows = store.query("MATCH (g:Graph) WHERE g.id IN $ids RETURN g.id AS gid, g.slug AS slug, "
                               "g.n_edges AS n_edges ORDER BY gid", {"ids": gids}) if gids else []
            emit(rows, "table")
            return f"would delete {len(rows)} graph{'s' * (len(rows) != 1)} from {store.uri} (--dry-run: nothing deleted)"
        report = store.delete_graphs(gids)
        return (f"{store.uri}: deleted {report.graphs} graph{'s' * (report.graphs != 1)} "
                f"({report.nodes:,} nodes, {report.edges:,} edges)")
    click.echo(_run(settings, selectors, cypher, params, action))


@main.command()
@_selection
@click.option("--add", "-a", "tags", multiple=True, required=True, metavar="KEY=VALUE", help="A tag to add (repeatable).")
@click.pass_obj
def tag(settings, selectors, cypher, params, tags):
    """Add tags to graphs named by id, slug, tag or a query (one transaction).

    Example:

    \b
        circuit-atlas tag lang=fr --add split=test
    """
    new = _tags(tags, "--add")
    n = _run(settings, selectors, cypher, params, lambda store, gids: store.tag_graphs(gids, new))
    click.echo(f"tagged {n} graph{'s' * (n != 1)} with {', '.join(f'{k}={v}' for k, v in new.items())}")


@main.command()
@_selection
@click.option("--remove", "-r", "tags", multiple=True, required=True, metavar="KEY=VALUE|KEY",
              help="A tag to remove: key=value, or key for any value (repeatable).")
@click.pass_obj
def untag(settings, selectors, cypher, params, tags):
    """Remove tags from graphs named by id, slug, tag or a query (one transaction). A tag that no
    graph carries any more is deleted.

    Example:

    \b
        circuit-atlas untag split=test --remove split
    """
    n = _run(settings, selectors, cypher, params, lambda store, gids: store.untag_graphs(gids, list(tags)))
    click.echo(f"removed {n} tag{'s' * (n != 1)}")
