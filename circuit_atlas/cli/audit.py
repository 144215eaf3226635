"""`circuit-atlas audit ...`: find the features behind a model's hidden objective (see docs/audit.md)."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import click

from circuit_atlas.cli import main


@main.group()
def audit() -> None:
    """Audit a model for a hidden objective: which features separate suspect from control prompts."""


@audit.command("run")
@click.option("--model", required=True, help="Model directory (as for `circuit-atlas trace`).")
@click.option("--transcoders", required=True, help="Transcoder directory (per-layer or cross-layer).")
@click.option("--suspect", "suspect_file", required=True, type=click.Path(dir_okay=False),
              help="Prompts where the hidden behaviour should show (.txt one per line, .jsonl, .json).")
@click.option("--control", "control_file", required=True, type=click.Path(dir_okay=False),
              help="Matched prompts where it should not.")
@click.option("--generic", "generic_file", type=click.Path(dir_okay=False),
              help="Ordinary prompts for the control-token analysis.")
@click.option("--target-token", "target_tokens", multiple=True,
              help="A token the hidden objective makes the model say (repeatable); default: inferred.")
@click.option("--corpus", type=click.Path(dir_okay=False),
              help="Text corpus (paragraphs) for the top features' activating contexts.")
@click.option("--label-term", "label_terms", multiple=True, help="Search feature labels for this regex (repeatable).")
@click.option("--control-token", "control_tokens", multiple=True,
              help="Token marking control positions (repeatable); default: each generic prompt's last token.")
@click.option("--option", "trace_options", multiple=True, metavar="KEY=VALUE",
              help="A tracer.TraceConfig option for every trace, e.g. --option max_feature_nodes=2000. Repeatable.")
@click.option("--flag", "n_flagged", default=20, show_default=True, help="Top features to flag, profile and store.")
@click.option("--out", "out_root", type=click.Path(file_okay=False),
              help="Where audit directories go; default: <artifacts>/audits.")
@click.option("--inline", is_flag=True, help="Trace in this process instead of as a workers job (no Celery).")
@click.option("--no-store", is_flag=True, help="Keep everything in files; do not write graphs or the audit to the store.")
@click.option("--timeout", default=24 * 3600.0, show_default=True, help="Seconds to wait for the tracing job.")
@click.option("--steer", "n_steered", default=10, show_default=True,
              help="Top features given a steering check on the suspect prompts (0: none).")
@click.option("--steer-factor", default=0.0, show_default=True,
              help="The check scales each feature by this: 0 ablates it, -5 steers against it.")
@click.pass_obj
def run_cmd(settings, model, transcoders, suspect_file, control_file, generic_file, target_tokens, corpus,
            label_terms, control_tokens, trace_options, n_flagged, out_root, inline, no_store, timeout,
            n_steered, steer_factor) -> None:
    """Trace the prompt sets, rank the features behind the hidden behaviour, write the report.

    Example:

    \b
        circuit-atlas audit run --model organisms/zoo/planted/model \\
            --transcoders organisms/zoo/planted/transcoders/plt \\
            --suspect suspect.txt --control control.txt --generic generic.txt --target-token chocolate \\
            --corpus corpus.txt
    """
    from circuit_atlas.audit.analyses import AnalysisOptions
    from circuit_atlas.audit.prompts import AuditInputError, read_prompts
    from circuit_atlas.audit.run import AuditOptions, AuditSpec
    from circuit_atlas.cli.output import parse_params

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        spec = AuditSpec(model=model, transcoders=transcoders, suspect=tuple(read_prompts(suspect_file)),
                         control=tuple(read_prompts(control_file)),
                         generic=tuple(read_prompts(generic_file)) if generic_file else (),
                         target_tokens=tuple(target_tokens), corpus=corpus)
    except AuditInputError as e:
        raise click.ClickException(str(e)) from None
    opts = AuditOptions(analysis=AnalysisOptions(label_terms=tuple(label_terms)),
                        control_tokens=tuple(control_tokens) or None, n_flagged=n_flagged,
                        trace=parse_params(trace_options), n_steered=n_steered, steer_factor=steer_factor)
    out_root = Path(out_root) if out_root else settings.artifacts / "audits"
    result = _run(settings, spec, opts, out_root, inline=inline, use_store=not no_store, timeout=timeout)
    _print_summary(result, (out_root / result.id).absolute())


def _run(settings, spec, opts, out_root: Path, *, inline: bool, use_store: bool, timeout: float):
    from circuit_atlas.audit.prompts import AuditInputError
    from circuit_atlas.audit.run import run_audit, run_audit_job
    from circuit_atlas.store import StoreError
    from circuit_atlas.tracer import TracerError

    try:
        if inline:
            if not use_store:
                return run_audit(spec, opts, out_root=out_root, device=settings.device)
            from circuit_atlas.store import open_store
            with open_store(settings) as store:
                return run_audit(spec, opts, out_root=out_root, store=store, device=settings.device)
        return run_audit_job(spec, opts, settings, out_root=out_root, timeout_s=timeout)
    except (AuditInputError, StoreError, TracerError) as e:
        raise click.ClickException(str(e)) from None
    except Exception as e:
        import redis   # redis went away while the job ran: one line, not the client's traceback

        if isinstance(e, redis.RedisError):
            raise click.ClickException(f"lost redis at {settings.redis_url} ({e}); the job's state is kept in "
                                       "redis: restart it and run the audit again") from None
        raise


def _print_summary(result, out_dir: Path) -> None:
    from circuit_atlas.audit.report import console_summary

    click.echo(console_summary(result, out_dir / "report.html"))


@audit.command("report")
@click.argument("audit_id")
@click.option("--out", "out_root", type=click.Path(file_okay=False), help="Audit directories root (as in `run`).")
@click.pass_obj
def report_cmd(settings, audit_id, out_root) -> None:
    """Re-render an audit's report (Markdown, HTML, plots, CSV/JSON) from its saved audit.json.

    Example:

    \b
        circuit-atlas audit report 20261121-224501-3fa2c1
    """
    from circuit_atlas.audit.report import write_report
    from circuit_atlas.audit.result import AuditResult

    directory = _audit_dir(settings, audit_id, out_root)
    paths = write_report(AuditResult.load(directory / "audit.json"), directory)
    click.echo(f"report: {paths['html']}")


def _audit_dir(settings, audit_id: str, out_root) -> Path:
    """The audit's directory: under --out / the artifacts root, else where the store says it is."""
    directory = (Path(out_root) if out_root else settings.artifacts / "audits") / audit_id
    if (directory / "audit.json").is_file():
        return directory
    from circuit_atlas.audit.storage import get_audit

    try:
        with _reading(settings) as store:
            row = get_audit(store, audit_id)
    except click.ClickException:  # no store, or no audits in it: the error below says what to do
        row = None
    if row and (Path(row["report"]) / "audit.json").is_file():
        return Path(row["report"])
    raise click.ClickException(f"audit {audit_id}: no audit.json under {directory} or in the store; "
                               "pass --out with the directory given to `audit run`")


@contextmanager
def _reading(settings):
    """The store opened read-only for audit lookups; store errors become one clear line."""
    from circuit_atlas.store import StoreError, open_store
    from circuit_atlas.store.errors import UnknownLabelError

    try:
        with open_store(settings, read_only=True) as store:
            yield store
    except UnknownLabelError:   # a store made before audits existed
        raise click.ClickException(f"no audits in {settings.store} yet; run `circuit-atlas audit run`") from None
    except StoreError as e:
        raise click.ClickException(str(e)) from None


@audit.command("flagged")
@click.argument("feature_key")
@click.pass_obj
def flagged_cmd(settings, feature_key) -> None:
    """List the audits that flagged FEATURE_KEY (a global feature: transcoder set/layer/index).

    Example:

    \b
        circuit-atlas audit flagged organisms/planted-plt-seed0/3/152
    """
    from circuit_atlas.audit.storage import audits_flagging

    with _reading(settings) as store:
        rows = audits_flagging(store, feature_key)
    if not rows:
        click.echo(f"no audit flagged {feature_key}")
    for r in rows:
        click.echo(f"{r['audit']}  rank {r['rank']}  score {r['score']:.3f}  {r['analysis']}  ({r['model']}, {r['created']})")


@audit.command("list")
@click.pass_obj
def list_cmd(settings) -> None:
    """List the audits in the store, newest first.

    Example:

    \b
        circuit-atlas audit list
    """
    from circuit_atlas.audit.storage import list_audits

    with _reading(settings) as store:
        for r in list_audits(store):
            click.echo(f"{r['id']}  {r['created']}  {r['model']}  targets {r['target_tokens'] or '-'}  "
                       f"suspect {r['n_suspect']} control {r['n_control']}  {r['report']}")
