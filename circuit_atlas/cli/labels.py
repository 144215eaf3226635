"""`circuit-atlas labels`: import users' feature labels, compute automatic ones from the corpus."""
from __future__ import annotations

import sys

import click

from circuit_atlas.cli import main


@main.group()
def labels():
    """Feature labels: imported (Neuronpedia exports, CSV) and automatic (read off the stored graphs).

    Every query shows a feature's label: a user's imported label wins over a graph file's own
    label, which wins over the automatic one. All of them, with their sources, are listed by
    `circuit-atlas query feature-labels -p fkey=KEY` and searched by `query search-features`.
    """


@labels.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--transcoder-set", default=None, metavar="NAME",
              help="The transcoder set the labels belong to (default: the store's only one).")
@click.pass_obj
def labels_import(settings, file, transcoder_set):
    """Import feature labels: a Neuronpedia explanation export (.json/.jsonl) or a CSV (layer,index,label).

    A CSV (.csv, .tsv) may separate its columns by commas, semicolons or tabs. Any of them may be
    gzipped (Neuronpedia's bulk datasets: batch-0.jsonl.gz).
    Neuronpedia's `layer` is its source id ("20-clt-hp": layer 20); the label is `description`.
    A label for a feature no stored graph has yet is kept for when one is ingested.

    Example:

    \b
        circuit-atlas labels import explanations-20-clt-hp.jsonl --transcoder-set mntss/clt-gemma-2-2b-2.5M
        circuit-atlas labels import my-labels.csv
    """
    from circuit_atlas.queries.labels import LabelFileError, import_labels
    from circuit_atlas.store import StoreError, open_store

    try:
        with open_store(settings) as store:
            report = import_labels(store, file, transcoder_set)
    except (LabelFileError, StoreError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    click.echo(report.summary())


@labels.command("auto")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The model's HF checkpoint directory: adds the tokens each decoder promotes (needs --transcoders).")
@click.option("--transcoders", "transcoders_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The transcoders of the stored graphs (with --model).")
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="Tokens listed per kind of evidence (default: 5, as one concept is often several tokens).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
def labels_auto(settings, model_dir, transcoders_dir, top, quiet):
    """Label every stored feature from the corpus: the tokens it sits on, the logits it drives.

    A label reads '"<token it sits on most>" → say "<logit it drives most>"' (without a positive logit
    edge: the token its decoder promotes most, given --model, else 'not "<logit it suppresses most>"').
    Run it again after ingesting more graphs.

    Example:

    \b
        circuit-atlas labels auto
        circuit-atlas labels auto --model ckpt/ --transcoders tc/
    """
    from tqdm import tqdm

    from circuit_atlas.queries.labels import EVIDENCE_SHOWN, auto_labels
    from circuit_atlas.store import StoreError, open_store

    if (model_dir is None) != (transcoders_dir is None):
        raise click.UsageError("--model and --transcoders go together")
    model = None
    if model_dir is not None:
        from circuit_atlas import tracer
        try:
            model = tracer.load(model_dir, transcoders_dir)
        except tracer.TracerError as e:
            raise click.ClickException(str(e)) from None
    bar = tqdm(unit="graph", desc="labels auto", disable=quiet or not sys.stderr.isatty())

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)
    try:
        with open_store(settings) as store, bar:
            made = auto_labels(store, model, top or EVIDENCE_SHOWN, progress=progress)
    except StoreError as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    promoted = sum(bool(v["promotes"]) for v in made.values())
    click.echo(f"{settings.store}: automatic labels for {len(made):,} features"
               + (f" ({promoted:,} with the tokens their decoder promotes)" if model is not None else "")
               + "; users' and graph files' labels still win (query feature-labels lists them all)")
