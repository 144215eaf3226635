"""`circuit-atlas query` (the named query library), `circuit-atlas plot multilingual` and `plot paths`, `circuit-atlas supernodes`."""
from __future__ import annotations

import functools
import json

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import emit, output_options, parse_params
from circuit_atlas.settings import DEFAULT_TIMEOUT_S


def query_params(help: str):
    """K=V parameters of a named query, after the command's arguments or each with -p (the two spellings
    mix); the command gets them all, unparsed, as `params`."""
    def decorate(command):
        @functools.wraps(command)
        def merged(*args, pairs, params, **kwargs):
            return command(*args, params=pairs + params, **kwargs)
        merged = click.option("--param", "-p", "params", multiple=True, metavar="K=V",
                              help=f"{help} Also given without -p.")(merged)
        return click.argument("pairs", nargs=-1, metavar="[K=V]...")(merged)
    return decorate


timeout_option = click.option(
    "--timeout", "timeout_s", type=float, default=DEFAULT_TIMEOUT_S, show_default=True,
    help="Seconds before each statement the query runs is stopped (more than 0); raise it for large corpora.")


def _list_queries() -> str:
    from circuit_atlas import queries
    lines = []
    for name, q in sorted(queries.QUERIES.items()):
        if not q.listed:
            continue
        params = " ".join(f"{p.name}=<{p.type.__name__}>" if p.default is queries.registry.REQUIRED
                          else f"[{p.name}={json.dumps(p.default)}]" for p in q.params)
        lines.append(f"{name:<29} {q.summary}  params: {params or '(none)'}")
    return "\n".join(lines)


@main.command()
@click.argument("name", required=False)
@query_params("A query parameter; repeatable.")
@output_options
@click.option("--columns", default=None, metavar="A,B,...", help="Show only these columns, in this order.")
@click.option("--list", "list_", is_flag=True, help="List the named queries with what each answers and its parameters.")
@click.option("--describe", is_flag=True, help="Print the query's documentation (and Cypher) instead of running it.")
@timeout_option
@click.pass_obj
def query(settings, name, params, fmt, columns, list_, describe, timeout_s):
    """Run a named query from the library (see `--list` and docs/queries.md).

    Example:

    \b
        circuit-atlas query hubs-by-graphs --param limit=10
        circuit-atlas query common-paths -p hops=3 -p 'token=" cold"' --format json
        circuit-atlas query common-paths -p 'token=" Austin"' --columns path,n_graphs,mean_strength
        circuit-atlas query common-paths 'token=" Austin"' hops=3
    """
    from circuit_atlas import queries
    from circuit_atlas.queries import QueryError

    if list_ or not name:
        click.echo(_list_queries())
        return
    try:
        q = queries.get(name)
        if describe:
            click.echo(q.doc.strip() + ("\n\n" + q.cypher if q.cypher else ""))
            return
        given = parse_params(params)
        rows = _run(settings, name, given, writes=q.writes, timeout_s=timeout_s)
        if columns:
            wanted = [c.strip() for c in columns.split(",") if c.strip()]
            known = list(dict.fromkeys(k for r in rows for k in r)) or list(q.example)
            unknown = [c for c in wanted if c not in known]
            if unknown:
                raise click.BadParameter(f"{name} has no column {unknown[0]!r}; its columns: {', '.join(known)}",
                                         param_hint="--columns")
            rows = [{c: r.get(c) for c in wanted} for r in rows]
        note = _note(settings, q, given, rows)
    except QueryError as e:
        raise click.ClickException(str(e)) from None
    emit(rows, fmt)
    if note:
        click.echo(note, err=fmt != "table")


def _note(settings, q, given: dict, rows: list[dict]) -> str | None:
    """What a reader should know about the answer: why it is empty, that LIMIT cut it, why its labels are blank."""
    from circuit_atlas import queries
    from circuit_atlas.store import StoreError, open_store

    notes = []
    limit = q.bind(given).get("limit")
    if rows and limit is not None and len(rows) == limit:
        notes.append(f"(cut at limit={limit}: there may be more rows; raise it with -p limit=N)")
    if rows and (q.writes or not queries.blank_labels(rows)):     # nothing more to say: no need to open the store
        return "\n".join(notes) or None
    try:
        with open_store(settings, read_only=True) as store:
            if not rows:
                notes.append("why: " + queries.explain_empty(store, q.name, given))
            elif hint := queries.unlabelled(store, rows):
                notes.append(f"({hint})")
    except StoreError:
        pass
    return "\n".join(notes) or None


def _run(settings, name: str, params: dict, writes: bool = False, timeout_s: float | None = None) -> list[dict]:
    from circuit_atlas import queries
    from circuit_atlas.store import StoreError, open_store

    try:
        with open_store(settings, read_only=not writes) as store:
            return queries.run(store, name, params, timeout_s=timeout_s)
    except StoreError as e:
        raise click.ClickException(str(e).splitlines()[0]) from None


@main.group()
def plot():
    """Figures drawn from the query library."""


@plot.command("multilingual")
@click.option("--concept", default="", help="Only graphs tagged concept=<value> (default: all).")
@click.option("--out", "out", default="multilingual-iou", show_default=True,
              help="Output path without suffix: writes <out>.png and <out>.svg.")
@click.option("--title", default="", help="Figure title (default: the concept, the model and the number of parallel pairs).")
@timeout_option
@click.pass_obj
def plot_multilingual(settings, concept, out, title, timeout_s):
    """IoU of active features of parallel prompts against normalised layer depth, per language pair.

    Dashed lines: the same IoU for unrelated prompts in the same languages (baseline). Needs graphs
    tagged lang=<code> and item=<id> (docs/queries.md).

    Example:

    \b
        circuit-atlas plot multilingual --concept antonym --out figures/antonym-iou
    """
    from circuit_atlas.queries import QueryError
    from circuit_atlas.queries.multilingual import plot_iou

    try:
        rows = _run(settings, "multilingual-iou", {"concept": concept}, timeout_s=timeout_s)
    except QueryError as e:
        raise click.ClickException(str(e)) from None
    if not rows:
        raise click.ClickException("no parallel prompts found: tag graphs lang=<code> and item=<id> "
                                   "(same item in two languages), see docs/queries.md")
    for path in plot_iou(rows, out, title, concept=concept):
        click.echo(str(path))


@plot.command("paths")
@query_params("A parameter of common-paths (token, hops, tag, sign, min_weight, rank_by, limit; "
              "see `query common-paths --describe`). limit defaults to 10 here.")
@click.option("--out", "out", default="common-paths", show_default=True,
              help="Output path without suffix: writes <out>.png and <out>.svg.")
@click.option("--title", default="", help="Figure title (default: the end token, the paths and hops, the graphs covered).")
@timeout_option
@click.pass_obj
def plot_paths(settings, params, out, title, timeout_s):
    """The common paths into a logit as a circuit diagram: tokens, features (by label), logits.

    A feature many paths pass is drawn once, so shared steps show; blue edges excite, red inhibit,
    line width is the path's |mean strength|.

    Example:

    \b
        circuit-atlas plot paths -p 'token=" Austin"' -p hops=3 --out figures/austin-paths
    """
    from circuit_atlas import queries
    from circuit_atlas.queries import QueryError
    from circuit_atlas.queries.figures import plot_paths as draw
    from circuit_atlas.store import StoreError, open_store

    given = {"limit": 10, **parse_params(params)}
    try:
        with open_store(settings, read_only=True) as store:
            rows = queries.run(store, "common-paths", given, timeout_s=timeout_s)
            if not rows:
                raise click.ClickException("no paths to draw: " + queries.explain_empty(store, "common-paths", given))
    except (QueryError, StoreError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    for path in draw(rows, out, title):
        click.echo(str(path))


@main.group()
def supernodes():
    """Propose, import and list supernodes (groups of features with one role)."""


@supernodes.command("propose")
@query_params("A parameter of the propose-supernodes query (see `query propose-supernodes --describe`).")
@output_options
@timeout_option
@click.pass_obj
def supernodes_propose(settings, params, fmt, timeout_s):
    """Group features that play the same role across graphs; store them as (:Supernode).

    Example:

    \b
        circuit-atlas supernodes propose -p min_graphs=5
    """
    from circuit_atlas import queries
    try:
        given = parse_params(params)
        rows = _run(settings, "propose-supernodes", given, writes=True, timeout_s=timeout_s)
        note = _note(settings, queries.get("propose-supernodes"), given, rows)
    except queries.QueryError as e:
        raise click.ClickException(str(e)) from None
    emit(rows, fmt)           # members too: the feature keys of each group
    if note:
        click.echo(note, err=fmt != "table")


@supernodes.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def supernodes_import(settings, files):
    """Import the manual supernodes (Neuronpedia `qParams.supernodes`) of graph files already ingested.

    Example:

    \b
        circuit-atlas supernodes import graphs/*.json
    """
    from circuit_atlas.store import open_store
    from circuit_atlas.ingest.formats import GraphFileError, read_graph_file
    from circuit_atlas.queries.supernodes import import_manual

    try:
        graphs = [read_graph_file(f) for f in files]
    except GraphFileError as e:
        raise click.ClickException(str(e)) from None
    with open_store(settings, read_only=False) as store:
        missing = [f for f, g in zip(files, graphs) if not store.has_graph(g.id)]
        if missing:
            raise click.ClickException(f"{missing[0]}: not in the store; ingest it first (circuit-atlas ingest)")
        n = import_manual(store, graphs)
    click.echo(f"imported {n} supernode{'s' * (n != 1)} from {len(files)} file{'s' * (len(files) != 1)}")
