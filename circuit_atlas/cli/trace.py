"""`circuit-atlas trace`: one prompt -> one attribution graph (JSON file and/or the store)."""
from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import click

from circuit_atlas.cli import main
from circuit_atlas.tracer.config import TraceConfig

DEFAULTS = {f.name: f.default for f in dataclasses.fields(TraceConfig)}


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Local HF checkpoint directory (Llama, Gemma-2/3, Qwen2/3, GPT-2).")
@click.option("--transcoders", "transcoders_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Transcoder directory in circuit-tracer's format (config.yaml + safetensors).")
@click.argument("prompt")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the graph as circuit-tracer/Neuronpedia JSON.")
@click.option("--ingest", is_flag=True, help="Add the graph to the store (--store / $CIRCUIT_ATLAS_STORE).")
@click.option("--device", default=None, help="torch device, e.g. cuda [default: $CIRCUIT_ATLAS_DEVICE, else cpu].")
@click.option("--target", "target_tokens", multiple=True,
              help="Attribute from this token instead of the salient logits (repeatable).")
@click.option("--max-n-logits", type=int, default=DEFAULTS["max_n_logits"], show_default=True)
@click.option("--desired-logit-prob", type=float, default=DEFAULTS["desired_logit_prob"], show_default=True)
@click.option("--max-feature-nodes", type=int, default=DEFAULTS["max_feature_nodes"],
              help="Keep only the most influential features as nodes (default: all).")
@click.option("--batch-size", type=int, default=DEFAULTS["batch_size"], show_default=True)
@click.option("--update-interval", type=int, default=DEFAULTS["update_interval"], show_default=True)
@click.option("--node-threshold", type=float, default=DEFAULTS["node_threshold"], show_default=True)
@click.option("--edge-threshold", type=float, default=DEFAULTS["edge_threshold"], show_default=True)
@click.option("--slug", default="", help="Short name of the graph (JSON metadata, store). "
                                         "Default: the --out file's name, else the prompt's words.")
@click.option("--model-name", default=None, help="The model's name in the graph and the store. "
                                                 "Default: config.json's _name_or_path, else the folder name.")
@click.option("--lazy", is_flag=True, help="Leave the encoders in their files (transcoder sets larger than memory).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True,
              help="Precision transcoder weights are held in (products stay float32).")
@click.option("--offload", is_flag=True, help="On a GPU: encoders and attribution rows stay in CPU memory.")
@click.pass_obj
def trace(settings, model_dir, transcoders_dir, prompt, out, ingest, device, slug, model_name, lazy, dtype, offload,
          **options):
    """Trace PROMPT through a model with transcoders into a pruned attribution graph.

    \b
    Example:
        circuit-atlas trace --model ckpt/ --transcoders tc/ "The capital of Texas is" --out texas.json
    """
    from circuit_atlas import tracer
    from transformers.utils import logging as hf_logging

    if out:
        try:
            from circuit_atlas.ingest.write import write_graph_json
        except ImportError as e:
            raise click.ClickException("--out needs ingest.formats (merge branch `formats`)") from e
        _check_writable(out)   # before minutes of tracing, not after
    hf_logging.disable_progress_bar()  # one bar: ours, over the backward batches
    options["target_tokens"] = list(options["target_tokens"]) or None
    device = device or settings.device
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", tracer.TracerWarning)
            config = TraceConfig(**options)
            model = tracer.load(model_dir, transcoders_dir, device=device, model_name=model_name, lazy=lazy,
                                dtype=dtype, offload=offload)
            graph = tracer.trace(model, prompt, config, progress=True)
    except tracer.TracerError as e:
        raise click.ClickException(str(e)) from e
    finally:
        for w in caught:
            if issubclass(w.category, tracer.TracerWarning):
                click.echo(f"Warning: {w.message}", err=True)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    graph.slug = slug or (_stem(out) if out else graph.slug)
    click.echo(f"graph {graph.id}: {len(graph.nodes)} nodes, {graph.n_edges} edges, "
               f"replacement {graph.scores['replacement']:.3f}, completeness {graph.scores['completeness']:.3f}, "
               f"{graph.generator['seconds']:.2f}s")
    if out:
        try:
            write_graph_json(graph, out)
        except OSError as e:
            raise click.ClickException(f"{out}: cannot write the graph: {e.strerror or e}") from e
        click.echo(f"wrote {out}")
    if ingest:
        from circuit_atlas.store import open_store

        with open_store(settings) as store:
            stored = store.add_graph(graph)
        click.echo(f"{'stored in' if stored else 'already in'} {settings.store}")


def _check_writable(out: str) -> None:
    folder = Path(out).absolute().parent
    if not folder.is_dir():
        raise click.ClickException(f"{out}: folder {folder} does not exist; create it or choose another --out")
    if not os.access(folder, os.W_OK):
        raise click.ClickException(f"{out}: folder {folder} is not writable; choose another --out")


def _stem(out: str) -> str:
    name = Path(out).name
    for suffix in (".gz", ".json"):
        name = name.removesuffix(suffix)
    return name
