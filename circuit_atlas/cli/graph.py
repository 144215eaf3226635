"""`circuit-atlas graph show|export`: one stored graph, read in the terminal or opened in a viewer."""
from __future__ import annotations

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import emit, output_options, parse_params


@main.group()
def graph():
    """One stored graph: a summary (`show`) or circuit-tracer/Neuronpedia JSON (`export`)."""


def _open(settings):
    from circuit_atlas.store import open_store
    return open_store(settings, read_only=True)


@graph.command("show")
@click.argument("graph_ref", metavar="ID|SLUG")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Logits and features listed.")
@output_options
@click.pass_obj
def graph_show(settings, graph_ref, top, fmt):
    """The prompt, the top logits and the most influential features (with their labels) of one graph.

    Example:

    \b
        circuit-atlas graph show dallas-austin-llamma --top 5
    """
    from circuit_atlas.queries import QueryError, unlabelled
    from circuit_atlas.queries.views import summary
    from circuit_atlas.store import StoreError

    try:
        with _open(settings) as store:
            info = summary(store, graph_ref, top)
            hint = unlabelled(store, info["top_features"])
    except (QueryError, StoreError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    if fmt != "table":
        emit([info], fmt)
        return
    click.echo(f"{info['slug'] or info['gid']}  ({info['gid']})")
    click.echo(f"prompt      {info['prompt']!r}")
    click.echo(f"model       {info['model']}, transcoders {info['transcoder_set'] or '(unknown)'}")
    click.echo(f"size        {info['n_nodes']:,} nodes, {info['n_edges']:,} edges; tags: {', '.join(info['tags']) or 'none'}")
    click.echo("\ntop logits")
    emit(info["top_logits"], "table")
    click.echo("\nmost influential features (importance = 1 - cumulative influence)")
    emit(info["top_features"], "table")
    if hint:
        click.echo(f"({hint})")


@graph.command("export")
@click.argument("graph_ref", metavar="ID|SLUG")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The JSON file (.json or .json.gz).")
@click.option("--nodes", "node_ids", multiple=True, metavar="NODE_ID[,...]",
              help="Pin these nodes (node ids as `graph show` prints them; comma-separated or repeated).")
@click.option("--from-query", "query", metavar="NAME",
              help="Pin the nodes of this graph that a named query's rows mention (features, start/end tokens); "
                   "rows with members (supernodes) become supernodes.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V", help="A parameter of --from-query; repeatable.")
@click.option("--supernodes", is_flag=True, help="Add every stored supernode with members in this graph.")
@click.pass_obj
def graph_export(settings, graph_ref, out, node_ids, query, params, supernodes):
    """Write a stored graph as circuit-tracer/Neuronpedia JSON, with pinned nodes and supernodes.

    The viewers (circuit-tracer's local server, Neuronpedia's upload) open it with the subgraph
    pinned as a researcher would have built it by hand; feature nodes carry their labels.

    Example:

    \b
        circuit-atlas graph export dallas-austin-llamma --from-query common-paths \\
            -p 'token=" Austin"' -p limit=3 --out dallas-paths.json
        circuit-atlas graph export dallas-austin-llamma --nodes 20_15589_9,23_12237_9 --out pins.json
    """
    from circuit_atlas.ingest.write import write_graph_json
    from circuit_atlas.queries import QueryError
    from circuit_atlas.queries.views import export_view
    from circuit_atlas.store import StoreError

    if params and not query:
        raise click.UsageError("--param goes with --from-query")
    ids = [i.strip() for group in node_ids for i in group.split(",") if i.strip()]
    try:
        with _open(settings) as store:
            view = export_view(store, graph_ref, ids, query, parse_params(params), supernodes)
        write_graph_json(view, out)
    except (QueryError, StoreError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror}") from None
    q = view.extra["qParams"]
    click.echo(f"{out}: {view.slug or view.id} with {len(q['pinnedIds'])} pinned nodes and "
               f"{len(q['supernodes'])} supernodes ({len(view.nodes):,} nodes, {view.n_edges:,} edges)")
