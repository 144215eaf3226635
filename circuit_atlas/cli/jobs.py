"""`circuit-atlas jobs ...` (bulk tracing jobs) and `circuit-atlas workers start` (run the workers)."""
from __future__ import annotations

import functools
import os
import time

import click

from circuit_atlas.cli import main
from circuit_atlas.cli.output import parse_params


def _jobs(ctx: click.Context):
    from circuit_atlas.workers.jobs import Jobs

    return Jobs(ctx.obj.redis_url)


def _one_line_errors(command):
    """Job, job-file and redis errors as one line (click's "Error: ...") instead of a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import redis

        from circuit_atlas.workers.jobfile import JobFileError
        from circuit_atlas.workers.jobs import JobNotFound
        from circuit_atlas.workers.state import shown

        try:
            return command(*args, **kwargs)
        except (JobFileError, JobNotFound) as e:
            raise click.ClickException(str(e)) from None
        except (redis.ConnectionError, redis.TimeoutError) as e:
            url = shown(click.get_current_context().obj.redis_url)
            raise click.ClickException(f"cannot reach redis at {url} ({e}); start redis-server "
                                       "or set CIRCUIT_ATLAS_REDIS_URL") from None
    return wrapper


@main.group()
def jobs() -> None:
    """Bulk tracing jobs: submit a file of prompts, watch it, retry its failures.

    Needs redis (CIRCUIT_ATLAS_REDIS_URL) and running workers (`circuit-atlas workers start`).
    """


@jobs.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--model", help="Model directory (overrides the file's header).")
@click.option("--transcoders", help="Transcoder directory (overrides the file's header).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A tracer.TraceConfig option, e.g. --option max_n_logits=5. Repeatable.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag for every prompt. Repeatable.")
@click.pass_context
@_one_line_errors
def submit(ctx, file, model, transcoders, options, tags) -> None:
    """Queue a job of prompts from FILE (.jsonl, .csv, or .txt: a prompt a line); prints the job id.

    Prompts already traced with the same model, transcoders and options are skipped. A file whose header
    says "kind": "intervene" is an intervention job: every prompt x every target of its "intervene" list
    (docs/interventions.md). The model and transcoder paths are read by the workers; a relative one that
    exists here is made absolute first.

    Example:

    \b
        circuit-atlas jobs submit prompts.jsonl --option max_n_logits=5
    """
    overrides = {"model": model, "transcoders": transcoders,
                 "options": parse_params(options),
                 "tags": {k: str(v) for k, v in parse_params(tags).items()}}
    jobs_ = _jobs(ctx)
    job_id = jobs_.submit(file, overrides, store=ctx.obj)
    spec = jobs_.spec(job_id)
    for what, path in (("model", spec.model), ("transcoders", spec.transcoders)):
        if not os.path.exists(path):
            click.echo(f"Warning: {what} {path}: not found on this machine; workers elsewhere must find it "
                       "there, or each prompt fails", err=True)
    click.echo(job_id)


@jobs.command()
@click.argument("job_id")
@click.option("--watch", is_flag=True, help="Show a live progress bar until the job finishes.")
@click.pass_context
@_one_line_errors
def status(ctx, job_id, watch) -> None:
    """Counts, graphs per hour, ETA and errors of job JOB_ID.

    Example:

    \b
        circuit-atlas jobs status 3f2a9c1e0b7d --watch
    """
    jobs_ = _jobs(ctx)
    st = jobs_.status(job_id)
    if watch:
        st = _watch(jobs_, st)
    click.echo(format_status(st))


def _watch(jobs_, st):
    """A live bar of finished prompts. Its rate is the job's graphs per hour (jobs.status: over the last
    minutes, none until there is a meaningful one), not tqdm's, which counts the prompts that were
    already finished or skipped when the bar opened as if they had been done in that instant."""
    from tqdm import tqdm

    bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
    with tqdm(total=st.n, desc=st.id, bar_format=bar_format) as bar:
        while True:
            bar.n = st.n - st.pending
            bar.set_postfix_str(_watch_line(st), refresh=True)
            if not st.pending:
                return st
            time.sleep(1.0)
            st = jobs_.status(st.id)


def _watch_line(st) -> str:
    parts = [_counts_line(st)]
    if st.unserved:
        parts.append(_unserved_line(st))
    elif st.graphs_per_hour:
        parts.append(f"{st.graphs_per_hour:,.0f} graphs/hour" + (f", ETA {_hms(st.eta_s)}" if st.eta_s else ""))
    return "; ".join(parts)


def _unserved_line(st) -> str:
    return (f"no worker is consuming the {' and '.join(repr(q) for q in st.unserved)} "
            f"queue{'s' * (len(st.unserved) > 1)}: start one with `circuit-atlas workers start`")


@jobs.command("list")
@click.pass_context
@_one_line_errors
def list_(ctx) -> None:
    """All jobs, oldest first: id, state, counts, file.

    Example:

    \b
        circuit-atlas jobs list
    """
    for st in _jobs(ctx).list():
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.created))
        click.echo(f"{st.id}  {created}  {st.state:<10} {_counts_line(st)}  {st.file}")


@jobs.command()
@click.argument("job_id")
@click.pass_context
@_one_line_errors
def cancel(ctx, job_id) -> None:
    """Cancel job JOB_ID: queued prompts are dropped; running traces finish and are stored.

    Example:

    \b
        circuit-atlas jobs cancel 3f2a9c1e0b7d
    """
    n = _jobs(ctx).cancel(job_id)
    click.echo(f"cancelled {n} queued prompts of job {job_id}")


@jobs.command("retry-failed")
@click.argument("job_id")
@click.pass_context
@_one_line_errors
def retry_failed(ctx, job_id) -> None:
    """Queue the failed prompts of job JOB_ID again (malformed rows stay failed: fix and resubmit).

    Example:

    \b
        circuit-atlas jobs retry-failed 3f2a9c1e0b7d
    """
    n = _jobs(ctx).retry_failed(job_id)
    click.echo(f"requeued {n} failed prompt{'s' * (n != 1)} of job {job_id}")


def _counts_line(st) -> str:
    c = st.counts
    running = c.get("tracing", 0) + c.get("traced", 0)
    done = c.get("done", 0) + c.get("skipped", 0)
    parts = [f"queued {c.get('queued', 0)}", f"running {running}", f"done {done}", f"failed {c.get('failed', 0)}"]
    if c.get("skipped"):
        parts[2] += f" ({c['skipped']} skipped)"
    if c.get("cancelled"):
        parts.append(f"cancelled {c['cancelled']}")
    return ", ".join(parts)


def format_status(st) -> str:
    outcome = ""
    if not st.pending and st.counts.get("failed"):
        outcome = f", {st.succeeded} of {st.n} succeeded, {st.counts['failed']} failed"
    lines = [f"job {st.id}: {st.state}{outcome}  ({st.file}; model {st.model}, transcoders {st.transcoders})",
             f"  {st.n} prompt{'' if st.n == 1 else 's'}: {_counts_line(st)}"]
    if st.unserved:
        lines.append(f"  {_unserved_line(st)}")
    elif st.graphs_per_hour is not None:
        eta = "" if not st.pending else f", ETA {_hms(st.eta_s)}"
        lines.append(f"  {st.graphs_per_hour:,.0f} graphs/hour{eta}")
    if st.errors:
        lines.append("  errors:")
        lines += [f"    {e}" for e in st.errors]
    return "\n".join(lines)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@main.group()
def workers() -> None:
    """Run the Celery workers of bulk tracing jobs on this machine (no Docker)."""


@workers.command()
@click.option("--trace", "n_trace", default=1, show_default=True, help="Trace worker processes (one model copy each).")
@click.option("--ingest", "n_ingest", default=1, show_default=True,
              help="Ingest worker processes; the embedded store admits only one writer.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.pass_context
@_one_line_errors
def start(ctx, n_trace, n_ingest, loglevel) -> None:
    """Start trace and ingest workers against CIRCUIT_ATLAS_REDIS_URL; Ctrl-C stops them.

    Example:

    \b
        circuit-atlas workers start --trace 2 --ingest 1
    """
    from circuit_atlas.store import is_neo4j_uri
    from circuit_atlas.workers.local import run_workers
    from circuit_atlas.workers.state import ping_once

    settings = ctx.obj
    embedded = not is_neo4j_uri(settings.store)
    if embedded and n_ingest > 1:
        raise click.ClickException(f"the embedded store {settings.store} admits one writer: use --ingest 1, "
                                   f"or a Neo4j store (--store bolt://...) for several ingest workers")
    # running workers wait out a redis restart, but workers started without redis would only log retries
    ping_once(settings.redis_url)
    ctx.exit(run_workers(n_trace, n_ingest, env={"CIRCUIT_ATLAS_STORE": settings.store}, loglevel=loglevel))
