"""`circuit-atlas intervene`: steer features on one prompt and show the next-token distribution before and after."""
from __future__ import annotations

import json
import warnings

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import format_rows


def _layers(text: str | None):
    """'0-3' or '1,2' -> a tuple of layers."""
    if not text:
        return None
    try:
        if "-" in text:
            start, stop = text.split("-")
            return tuple(range(int(start), int(stop) + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give layers as 0-3 or 1,2", param_hint="--constrained-layers") from None


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Local HF checkpoint directory.")
@click.option("--transcoders", "transcoders_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Transcoder directory in circuit-tracer's format.")
@click.argument("prompt")
@click.option("--set", "sets", multiple=True, metavar="TARGET[@POS]=VALUE", help="Set the features to VALUE.")
@click.option("--scale", "scales", multiple=True, metavar="TARGET[@POS]=FACTOR",
              help="Multiply their clean activations (negative: steer against).")
@click.option("--add", "adds", multiple=True, metavar="TARGET[@POS]=DELTA", help="Add DELTA to their activations.")
@click.option("--ablate", "ablates", multiple=True, metavar="TARGET[@POS]", help="Set them to 0.")
@click.option("--inject", "injects", multiple=True, metavar="TARGET=STRENGTH",
              help="Set them to STRENGTH x their activations on the --donor prompt (position by position from the end).")
@click.option("--donor", help="The prompt whose activations --inject transplants.")
@click.option("--target", "targets", multiple=True, help="A token whose change to report (repeatable; default: the top one).")
@click.option("--top-k", type=int, default=5, show_default=True, help="Tokens shown before and after.")
@click.option("--generate", type=int, default=0, help="Also show greedy continuations of this many tokens.")
@click.option("--live-attention", is_flag=True, help="Let attention patterns change (default: frozen, as circuit-tracer).")
@click.option("--constrained-layers", help="Only these layers' transcoders carry the change (0-3 or 1,2); see docs.")
@click.option("--save", "save", is_flag=True, help="Store the run as (:Intervention) evidence in the store.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def intervene(settings, model_dir, transcoders_dir, prompt, sets, scales, adds, ablates, injects, donor, targets,
              top_k, generate, live_attention, constrained_layers, save, device, fmt):
    """Intervene on transcoder features while the model reads PROMPT; print the top tokens before and after.

    TARGET is L/F (layer/feature of the loaded transcoders), a feature key <set>/L/F, supernode:ID (a stored
    supernode's members) or graph:GID[:NODE,...] (a stored graph's feature nodes, at their positions).
    POS is 3, 3,5, last, all (every position and generated token; the default) or generated. They are
    applied in the order set, scale, add, ablate, inject: where two touch one feature, the later wins.

    \b
    Examples:
        circuit-atlas intervene --model m/ --transcoders tc/ "The capital of Texas is" \\
            --scale 'supernode:tag/state=texas=-1' --inject 'supernode:tag/state=california=4' \\
            --donor "The capital of California is" --target ' Austin' --target ' Sacramento' --generate 10
        circuit-atlas intervene --model m/ --transcoders tc/ "The opposite of small is" --ablate '3/117@last'
    """
    from transformers.utils import logging as hf_logging

    from circuit_atlas import tracer
    from circuit_atlas.queries import QueryError
    from circuit_atlas.queries import interventions as evidence
    from circuit_atlas.store import StoreError

    hf_logging.disable_progress_bar()
    written = [(op, text) for op, texts in (("set", sets), ("scale", scales), ("add", adds), ("ablate", ablates),
                                            ("inject", injects)) for text in texts]
    if not written:
        raise click.ClickException("nothing to do: give --set, --scale, --add, --ablate or --inject")
    with warnings.catch_warnings(record=True) as caught:      # tracer warnings: one line each, as trace's
        warnings.simplefilter("always", tracer.TracerWarning)
        try:
            model = tracer.load(model_dir, transcoders_dir, device=device)
            specs = [evidence.Spec.parse(op, text) for op, text in written]
            store_needed = save or any(s.target.startswith(("supernode:", "graph:")) for s in specs)
            store = None
            if store_needed:
                from circuit_atlas.store import connect
                store = connect(settings, read_only=not save)
            try:
                ivs, supernodes = [], {}
                for spec in specs:
                    more, roles = evidence.resolve(spec, model, store, prompt=prompt, donor=donor)
                    ivs += more
                    supernodes.update(roles)
                result = tracer.intervene(model, prompt, ivs, targets=targets, top_k=top_k,
                                          freeze_attention=not live_attention,
                                          constrained_layers=_layers(constrained_layers), generate=generate)
                stored = None
                if save:
                    description = "; ".join(f"{op} {text}" for op, text in written)
                    stored = evidence.store_result(store, result, model=model.model_name,
                                                   transcoder_set=model.transcoders.name, supernodes=supernodes,
                                                   description=description)
            finally:
                if store is not None:
                    store.close()
        except (tracer.TracerError, QueryError, StoreError, ValueError) as e:
            raise click.ClickException(str(e)) from e
        finally:
            for message in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, tracer.TracerWarning)):
                click.echo(f"Warning: {message}", err=True)
    if fmt == "json":
        click.echo(json.dumps({**result.to_dict(), "stored": stored}, ensure_ascii=False, indent=2))
        return
    click.echo(f"prompt: {result.prompt}")
    n_features = len({(i.layer, i.feature) for i in ivs})
    click.echo(f"interventions: {len(ivs)} on {n_features} feature{'s' * (n_features != 1)} "
               f"({'live' if live_attention else 'frozen'} attention"
               f"{', constrained to layers ' + constrained_layers if constrained_layers else ''})")
    click.echo(format_rows(result.table()))
    click.echo(format_rows([{"target": t.token, "logit_before": t.logit_before, "logit_after": t.logit_after,
                             "logit_change": t.logit_change, "p_before": t.prob_before, "p_after": t.prob_after,
                             "rank_before": t.rank_before, "rank_after": t.rank_after} for t in result.targets]))
    if generate:
        click.echo(f"continuation before: {result.continuation_before}")
        click.echo(f"continuation after:  {result.continuation_after}")
    if stored:
        click.echo(f"stored (:Intervention {{id: '{stored}'}}) in {settings.store}")
