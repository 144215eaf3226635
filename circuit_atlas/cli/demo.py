"""`circuit-atlas demo`: the main job end to end on one machine — trace, store, query."""
from __future__ import annotations

import time

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import format_rows


@main.command()
@click.option("--organism", default="planted", show_default=True,
              help="Model organism from organisms/zoo (planted or control).")
@click.option("--transcoders", "kind", type=click.Choice(["plt", "clt"]), default="plt", show_default=True,
              help="Per-layer or cross-layer transcoders of the organism.")
@click.option("--tasks", default="antonym,twohop", show_default=True,
              help="Comma-separated prompt sets of the organism's ground truth (antonym, twohop, addition).")
@click.option("--per-language", type=int, default=16, show_default=True,
              help="Trace at most this many prompts per task and language (0: all).")
@click.pass_obj
def demo(settings, organism: str, kind: str, tasks: str, per_language: int | None) -> None:
    """Trace an organism's parallel prompts in three languages, store them, print what they share.

    The prompts are held-out prompts of a tiny model trained here (organisms/, docs/organisms.md),
    tagged lang=, concept= (the task) and item= (the same item in every language). Graphs already in
    the store are found by content id and not stored twice, so a second run only queries.

    Example:

    \b
        circuit-atlas demo
        circuit-atlas --store /tmp/demo.db demo --transcoders clt --per-language 8
    """
    from circuit_atlas import organisms
    from circuit_atlas import queries
    from circuit_atlas import tracer
    from circuit_atlas.queries import labels
    from circuit_atlas.queries.analyses import short_key
    from circuit_atlas.store import open_store

    truth = organisms.truth(organism)
    wanted = [t.strip() for t in tasks.split(",") if t.strip()]
    prompts, counts = [], {}
    for item in truth["heldout"]:
        key = (item["task"], item["lang"])
        if item["task"] in wanted and (not per_language or counts.get(key, 0) < per_language):
            counts[key] = counts.get(key, 0) + 1
            prompts.append(item)
    if not prompts:
        raise click.ClickException(f"no held-out prompts for tasks {wanted}; "
                                   f"the organism has: {sorted({i['task'] for i in truth['heldout']})}")

    zoo = organisms.zoo_path(organism)
    click.echo(f"1. tracing {len(prompts)} prompts of organism {organism!r} ({kind.upper()} transcoders) "
               f"in {', '.join(truth['languages'].values())}")
    model = tracer.load(zoo / "model", zoo / "transcoders" / kind)
    start, graphs = time.perf_counter(), []
    from tqdm import tqdm
    for item in tqdm(prompts, unit="graph", leave=False):
        graph = tracer.trace(model, item["prompt"])
        graph.tags.update(lang=item["lang"], concept=item["task"], item=item["concept"], organism=organism)
        graphs.append(graph)
    n_edges = sum(g.n_edges for g in graphs)
    click.echo(f"   {len(graphs)} graphs, {n_edges:,} edges in {time.perf_counter() - start:.1f} s")

    click.echo(f"2. storing them in {settings.store}")
    with open_store(settings) as store:
        new = sum(store.add_graphs(graphs))
        click.echo(f"   {new} new, {len(graphs) - new} already present")

        made = labels.auto_labels(store, model)
        click.echo(f"3. labelling every feature from the corpus (labels auto): {len(made)} features, named by the "
                   "token they sit on and the logit they drive")

        click.echo("4. features shared across languages, most consistent first (query shared-multilingual-features):")
        for task in wanted:
            rows = queries.run(store, "shared-multilingual-features", concept=task, k=3, limit=10_000)
            click.echo(f"\n   concept={task}: {len(rows)} features occur in all 3 languages; consistency = the smallest "
                       "share of a language's graphs holding the feature")
            click.echo(format_rows([{"feature": short_key(r["fkey"]), "label": r["label"],
                                     "consistency": round(r["consistency"], 2),
                                     "graphs per language": ", ".join(
                                         f"{p['lang']} {p['n_graphs']}/{round(p['n_graphs'] / p['share'])}"
                                         for p in r["per_lang"])}
                                    for r in rows[:6]]))
        click.echo("\n5. IoU of active features, parallel prompts vs unrelated (query multilingual-iou; layer all = whole graph):")
        rows = queries.run(store, "multilingual-iou", concept="", max_pairs=2000)
        click.echo(format_rows([{"pair": f"{r['lang_a']}-{r['lang_b']}", "layer": "all" if r["layer"] is None else r["layer"],
                                 "iou parallel": round(r["iou"], 3),
                                 "iou unrelated": None if r["baseline"] is None else round(r["baseline"], 3)}
                                for r in rows]))
    click.echo(f"\nNext: circuit-atlas --store {settings.store} query --list")
