"""The two tasks of a job: trace one prompt (queue "trace"), then ingest its graph (queue "ingest").

Delivery is at least once (acks_late, reject_on_worker_lost, redelivery after the visibility
timeout), so both tasks are idempotent and check before they work:
    1. the item is already terminal              -> return (a redelivered duplicate)
    2. the trace key is in the registry          -> skipped, with the stored graph's id
    3. the artifact <artifacts>/graphs/<key>.json exists -> do not trace again, queue its ingest
    4. trace, write the artifact atomically, then queue the ingest
The artifact is written before the ingest is queued, so a failed or killed ingest never costs a
trace; the store's add_graph is atomic and keyed by the graph's content id, so a repeated ingest
stores nothing twice.

Errors: broker and store outages are retried with exponential backoff; anything else (a prompt
too long for the model, a malformed graph) fails that item alone, with its error line in
`jobs status`. A prompt whose worker process died `max_deliveries` times fails as poison.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time
from pathlib import Path

import kombu.exceptions
import redis
from celery import Task

from workers.app import app, config, settings
from workers.config import SERVER_SCHEMES
from workers.jobs import CANCELLED, DONE, FAILED, SKIPPED, TERMINAL, JobNotFound, Jobs


class PoisonPrompt(RuntimeError):
    """A prompt whose trace killed its worker process too often."""


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "try again later": the broker or the store is (re)starting or busy."""
    errors: list[type[BaseException]] = [redis.ConnectionError, redis.TimeoutError,
                                         kombu.exceptions.OperationalError]
    try:
        import neo4j.exceptions as neo
        errors += [neo.ServiceUnavailable, neo.SessionExpired, neo.TransientError]
    except ImportError:  # the neo4j driver is optional for embedded-only installs
        pass
    try:
        from circuit_atlas.store import StoreUnavailable
        errors.append(StoreUnavailable)
    except ImportError:
        pass
    return tuple(errors)


TRANSIENT = _transient_errors()


class JobTask(Task):
    """Records a task's final failure on its job item, so that the job still finishes."""

    autoretry_for = TRANSIENT
    retry_backoff = 1            # 1, 2, 4, ... s
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = config.max_retries

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        job_id, index = args[0], args[1]
        jobs = _jobs()
        try:
            where = f"{Path(jobs.file(job_id)).name} line {jobs.item(job_id, index).line}"
        except JobNotFound:  # the job was deleted from redis: nothing to record
            return
        jobs.finish(job_id, index, FAILED, error=f"{where}: {type(exc).__name__}: {exc}")


@app.task(name="workers.trace", base=JobTask, bind=True)
def trace_prompt(self, job_id: str, index: int) -> str:
    """Trace one prompt of a job and persist its graph; returns what happened."""
    jobs = _jobs()
    item = jobs.item(job_id, index)
    if jobs.state(job_id, index) in TERMINAL:
        return "already finished"
    if jobs.cancelled(job_id):
        jobs.finish(job_id, index, CANCELLED)
        return "cancelled"
    graph_id = jobs.stored_graph(item.key)
    if graph_id:
        jobs.finish(job_id, index, SKIPPED, graph_id=graph_id)
        return "already stored"
    attempts = jobs.begin_trace(job_id, index)
    path = artifact_path(item.key)
    trace_s = None
    if not path.exists():
        if attempts > config.max_deliveries:
            raise PoisonPrompt(f"its worker died {attempts - 1} times while tracing it "
                               f"(out of memory? raise CIRCUIT_ATLAS_MAX_DELIVERIES to try again)")
        import tracer

        spec = jobs.spec(job_id)
        model = load_model(spec.model, spec.transcoders)
        trace = tracer.trace
        if not callable(trace):  # the lazy attribute can be shadowed by the submodule tracer/trace.py
            trace = trace.trace
        t0 = time.perf_counter()
        graph = trace(model, item.prompt, tracer.TraceConfig(**spec.options))
        trace_s = time.perf_counter() - t0
        graph.tags.update(item.tags)
        _write_artifact(graph, path)
    jobs.traced(job_id, index, trace_s)
    ingest_graph.apply_async((job_id, index))
    return "traced" if trace_s is not None else "artifact found"


@app.task(name="workers.ingest", base=JobTask, bind=True)
def ingest_graph(self, job_id: str, index: int) -> str:
    """Store the traced graph of one job item; returns its graph id."""
    from ingest.formats import read_graph_file

    jobs = _jobs()
    item = jobs.item(job_id, index)
    if jobs.state(job_id, index) in TERMINAL:
        return "already finished"
    graph_id = jobs.stored_graph(item.key)
    if graph_id is None:
        graph = read_graph_file(artifact_path(item.key))
        graph.tags.update(item.tags)
        with open_store_for_writes() as store:
            store.add_graph(graph)      # atomic; False when this content id is stored already
        graph_id = graph.id
        jobs.register_graph(item.key, graph_id)
    jobs.finish(job_id, index, DONE, graph_id=graph_id)
    return graph_id


# -- per-process resources --

@functools.cache
def _jobs() -> Jobs:
    return Jobs(settings.redis_url)


@functools.lru_cache(maxsize=1)
def load_model(model_ref: str, transcoders_ref: str):
    """The model and transcoders, loaded once per worker process and kept for its next tasks.

    maxsize=1: a job on another model replaces it, so a GPU never holds two models.
    """
    import torch
    import tracer

    torch.set_num_threads(config.torch_threads)
    return tracer.load(model_ref, transcoders_ref, device=config.device)


@contextlib.contextmanager
def open_store_for_writes():
    """The store to write one graph into.

    Embedded: opened for each graph and closed after it, so that its one file lock is free for CLI
    queries between writes (about 0.1 s per graph, on the ingest worker only). Neo4j: one driver per
    process, kept open.
    """
    if settings.store.startswith(SERVER_SCHEMES):
        yield _server_store()
    else:
        from circuit_atlas.store import open_store

        with open_store(settings.store, read_only=False) as store:
            yield store


@functools.cache
def _server_store():
    from circuit_atlas.store import open_store

    return open_store(settings.store, read_only=False).__enter__()


def artifact_path(key: str) -> Path:
    return settings.artifacts / "graphs" / f"{key}.json"


def _write_artifact(graph, path: Path) -> None:
    """Write-then-rename: a reader (or a redelivered task) never sees half a file."""
    from ingest.formats import write_graph_json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    write_graph_json(graph, tmp)
    os.replace(tmp, path)
