"""The two tasks of a job: trace one prompt (queue "trace"), then ingest its graph (queue "ingest").

An intervention job (workers/interventions.py) goes through the same two tasks: the first runs the
intervention and writes its record as the artifact, the second stores it as (:Intervention).

Delivery is at least once (acks_late, reject_on_worker_lost, redelivery after the visibility
timeout), so both tasks are idempotent and check before they work:
    1. the item is already terminal              -> return (a redelivered duplicate)
    2. the trace key is in the registry          -> skipped, with the stored graph's id
    3. its artifact is in redis                  -> do not trace again, queue its ingest
       (or in this host's artifact directory     -> put it in redis, queue its ingest)
    4. trace, write the artifact (this host's directory, then redis), then queue the ingest
The artifact is in redis before the ingest is queued, so a failed or killed ingest never costs a
trace, and an ingest worker on any host finds it: trace and ingest workers share redis and the
store, no directory (docs/workers.md, "Several machines"). The store's add_graphs is atomic and
keyed by the graph's content id, so a repeated ingest stores nothing twice; registering the stored
graph deletes its artifact from redis.

Errors: broker and store outages are retried with exponential backoff; anything else (a prompt
too long for the model, a malformed graph) fails that item alone, with its error line in
`jobs status`. A prompt whose worker process died `max_deliveries` times fails as poison.

Lost messages: kombu's redis transport pops a message and only then records it as unacked, so a
redis restart between the two loses it, and its item would wait forever. Every worker runs a
sweeper thread; every `lost_task_check` seconds one of them compares the unfinished items with
the messages in the broker and sends again a task missing from two sweeps in a row.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import sys
import threading
import time
from pathlib import Path

import kombu.exceptions
import redis
from celery import Task
from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown
from celery.utils.log import get_logger

from circuit_atlas.tracer.errors import TracerError  # light: the tracer imports torch on first use
from circuit_atlas.workers.app import app, config, settings
from circuit_atlas.workers import liveness
from circuit_atlas.workers.config import INGEST_QUEUE
from circuit_atlas.workers.jobs import JobNotFound, Jobs
from circuit_atlas.workers.state import CANCELLED, DONE, FAILED, SKIPPED, TERMINAL, TRACE_TASK, connect

logger = get_logger(__name__)


class PoisonPrompt(RuntimeError):
    """A prompt whose trace killed its worker process too often."""


class ArtifactMissing(RuntimeError):
    """A traced item whose graph is in neither redis nor the registry."""


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "try again later": the broker or the store is (re)starting or busy."""
    import neo4j.exceptions as neo

    from circuit_atlas.store import StoreLockedError  # a query held the embedded store past its lock timeout

    # NoScriptError: a restarted redis has lost its Lua script cache; a retry reloads the scripts
    return (redis.ConnectionError, redis.TimeoutError, redis.exceptions.NoScriptError,
            kombu.exceptions.OperationalError, neo.ServiceUnavailable, neo.SessionExpired, neo.TransientError, StoreLockedError)


TRANSIENT = _transient_errors()


class JobTask(Task):
    """Records a task's final failure on its job item, so that the job still finishes."""

    autoretry_for = TRANSIENT
    retry_backoff = 1            # 1, 2, 4, ... s
    retry_backoff_max = 60
    retry_jitter = True

    @property
    def max_retries(self) -> int:      # read when a retry needs it: the worker's settings are loaded by then
        return config().max_retries

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        job_id, index = args[0], args[1]
        jobs = _jobs()
        try:
            where = f"{Path(jobs.file(job_id)).name} line {jobs.item(job_id, index).line}"
        except JobNotFound:  # the job was deleted from redis: nothing to record
            return
        jobs.finish(job_id, index, FAILED, error=f"{where}: {type(exc).__name__}: {exc}")


@app.task(name="workers.trace", base=JobTask, bind=True, throws=(TracerError, PoisonPrompt))
def trace_prompt(self, job_id: str, index: int) -> str:
    """Trace one prompt of a job and persist its graph; returns what happened."""
    jobs = _jobs()
    item, state, cancelled, graph_id = jobs.look(job_id, index)
    if state in TERMINAL:
        return "already finished"
    if cancelled:
        jobs.finish(job_id, index, CANCELLED)
        return "cancelled"
    if graph_id:
        jobs.finish(job_id, index, SKIPPED, graph_id=graph_id)
        return "already stored"
    attempts = jobs.begin_trace(job_id, index)
    spec = _spec(job_id)
    path = artifact_path(item.key, spec.kind)
    trace_s = None
    if jobs.has_artifact(item.key):
        pass                          # traced before, on this host or another, and not yet stored
    elif path.exists():
        jobs.put_artifact(item.key, _artifact_bytes(path))   # traced here; redis lost the way on
    else:
        if attempts > config().max_deliveries:
            raise PoisonPrompt(f"its worker died {attempts - 1} times while tracing it "
                               f"(out of memory? raise CIRCUIT_ATLAS_MAX_DELIVERIES to try again)")
        from circuit_atlas import tracer

        model = load_model(spec.model, spec.transcoders)
        t0 = time.perf_counter()
        if spec.kind == "intervene":
            from circuit_atlas.workers import interventions
            interventions.write_record(interventions.run_item(spec, item, model, job_id), path)
        else:
            graph = tracer.trace(model, item.prompt, tracer.TraceConfig(**spec.options))
            graph.tags.update(item.tags)
            _write_artifact(graph, path)
        trace_s = time.perf_counter() - t0
        jobs.put_artifact(item.key, _artifact_bytes(path))
    jobs.traced(job_id, index, trace_s)
    try:
        ingest_graph.apply_async((job_id, index))
    except Exception as e:  # noqa: BLE001 — mid-reconnect kombu fails with any error (AttributeError seen)
        # the graph is traced and recorded: failing the item would lose it; the lost-task sweeper
        # finds a traced item without an ingest message and sends it again
        logger.warning("job %s item %d: could not queue its ingest (%s: %s); the lost-task sweep will",
                       job_id, index, type(e).__name__, e)
    return "traced" if trace_s is not None else "artifact found"


@app.task(name="workers.ingest", base=JobTask, bind=True, throws=(ArtifactMissing,))
def ingest_graph(self, job_id: str, index: int) -> str:
    """Store the traced graph of one job item, with up to `ingest_batch - 1` other traced items.

    Every traced item has its own ingest message (the reliable path); the batch is opportunistic: the
    other items are claimed from the set of traced-but-not-ingested items, stored in one transaction,
    and their own messages then find them done. A batch that fails is stored one graph at a time
    (ingest.store_graphs), so one bad graph fails only its own item.
    """
    jobs = _jobs()
    own = _ingest_source(jobs, job_id, index)
    if own is not None:
        batch = [own]
        for other in jobs.claim_ingest(config().ingest_batch - 1):
            if other != (job_id, index):
                try:
                    source = _ingest_source(jobs, *other)
                except Exception:  # noqa: BLE001 — its own message will ingest it, or fail it with the error
                    continue
                if source is not None:
                    batch.append(source)
        _store_batch(jobs, batch)
    jobs.unclaim_ingest(job_id, index)
    return jobs.r.hget(f"ca:job:{job_id}:graph", index) or "not stored"


def _ingest_source(jobs: Jobs, job_id: str, index: int):
    """(job id, index, trace key, graph) to store, or None if the item is finished or stored already."""
    from circuit_atlas.ingest.formats import graph_from_bytes

    item, state, _, graph_id = jobs.look(job_id, index)
    if state in TERMINAL:
        return None
    if graph_id is not None:
        jobs.finish(job_id, index, DONE, graph_id=graph_id)
        return None
    data = jobs.artifact(item.key)
    if data is None and (graph_id := jobs.stored_graph(item.key)) is not None:
        jobs.finish(job_id, index, DONE, graph_id=graph_id)   # another ingest worker stored it meanwhile
        return None
    if data is None:
        raise ArtifactMissing(f"the traced graph (trace key {item.key}) is not in redis: was redis run "
                              "without its AOF? `circuit-atlas jobs retry-failed` traces it again")
    if _spec(job_id).kind == "intervene":       # an intervention's record, stored as (:Intervention)
        return job_id, index, item.key, json.loads(gzip.decompress(data))
    graph = graph_from_bytes(data, f"artifact {item.key}")
    graph.tags.update(item.tags)
    return job_id, index, item.key, graph


def _store_batch(jobs: Jobs, batch: list) -> None:
    """Store a batch of job items (the first is the task's own) through ingest's one path
    (ingest.store_graphs: one transaction, then one at a time on failure), then record each stored
    item as done (registry first: idempotent). A graph that fails alone raises if it is the task's
    own item; another item's failure is left to its own message, which fails it with the error."""
    from circuit_atlas.ingest import store_graphs
    from circuit_atlas.queries.interventions import store_record

    graphs = [x for *_, x in batch if not isinstance(x, dict)]
    outcomes: dict[int, object] = {}             # id(graph or record) -> True/False or its exception
    with open_store_for_writes() as store:
        if graphs:
            outcomes.update((id(g), outcome) for g, outcome in store_graphs(store, graphs, reraise=TRANSIENT))
        for *_, rec in (b for b in batch if isinstance(b[-1], dict)):
            try:
                outcomes[id(rec)] = store_record(store, rec)  # MERGE on its content id: a repeat stores nothing new
            except TRANSIENT:
                raise
            except Exception as e:  # noqa: BLE001 — fails its own item alone, as a graph would
                outcomes[id(rec)] = e
    for job_id, index, key, x in batch:
        if isinstance(outcomes[id(x)], Exception):
            continue
        result_id = x["id"] if isinstance(x, dict) else x.id
        jobs.register_graph(key, result_id)
        jobs.finish(job_id, index, DONE, graph_id=result_id)
    if isinstance(error := outcomes[id(batch[0][-1])], Exception):
        raise error


# -- liveness: heartbeats and the embedded store's one ingest worker (workers/liveness.py) --

_ingest_lock: list[int] = []       # the lock's file descriptor, held by the main process


def _queues(app_) -> list[str]:
    return sorted(app_.amqp.queues.consume_from or app_.amqp.queues)


@worker_init.connect
def _take_ingest_lock(sender, **_) -> None:
    """An ingest worker of an embedded store refuses to start while another one holds the store."""
    from circuit_atlas.store import is_neo4j_uri

    if INGEST_QUEUE in _queues(sender.app) and not is_neo4j_uri(settings().store):
        try:
            _ingest_lock.append(liveness.lock_ingest(settings().store))
        except liveness.IngestLockHeld as e:
            print(f"{sender.hostname} refuses to start: {e}", file=sys.stderr, flush=True)  # logging is not set up yet
            os._exit(liveness.REFUSED_EXIT_CODE)   # before the pool starts: nothing to clean up


@worker_process_init.connect
def _drop_inherited_ingest_lock(**_) -> None:
    """Pool processes close their copy of the lock, so that it lives exactly as long as the main process."""
    while _ingest_lock:
        os.close(_ingest_lock.pop())


@worker_ready.connect
def _start_heartbeat(sender, **_) -> None:
    liveness.start_heartbeat(connect(settings().redis_url), sender.hostname, _queues(sender.app), config().heartbeat)


@worker_shutdown.connect
def _stop_heartbeat(sender, **_) -> None:
    with contextlib.suppress(Exception):   # redis may be gone; the key then expires on its own
        liveness.forget(_jobs().r, sender.hostname)


# -- lost messages --

SWEEP_LOCK = "ca:lost:lock"


@worker_ready.connect
def _start_lost_task_sweeper(**_) -> None:
    threading.Thread(target=sweep_lost_tasks_forever, name="lost-task-sweeper", daemon=True).start()


def sweep_lost_tasks_forever() -> None:
    """In each worker's main process; the lock lets one worker sweep per interval."""
    jobs = Jobs(settings().redis_url)      # its own client: the thread shares nothing with the tasks
    interval = config().lost_task_check
    while True:
        time.sleep(interval)
        try:
            if jobs.r.set(SWEEP_LOCK, os.getpid(), nx=True, ex=interval):
                for task, job_id, index in jobs.sweep_lost_tasks():
                    logger.warning("the broker lost the %s task of job %s item %d; sending it again",
                                   task, job_id, index)
                    (trace_prompt if task == TRACE_TASK else ingest_graph).apply_async((job_id, index))
        except Exception as e:  # noqa: BLE001 — a redis outage: the next sweep tries again
            logger.warning("lost-task sweep failed: %s: %s", type(e).__name__, e)


# -- per-process resources --

@functools.cache
def _jobs() -> Jobs:
    return Jobs(settings().redis_url)


@functools.lru_cache(maxsize=256)
def _spec(job_id: str):
    return _jobs().spec(job_id)     # a job's spec never changes


@functools.lru_cache(maxsize=1)
def load_model(model_ref: str, transcoders_ref: str):
    """The model and transcoders, loaded once per worker process and kept for its next tasks.

    maxsize=1: a job on another model replaces it, so a GPU never holds two models.
    """
    import torch
    from circuit_atlas import tracer

    torch.set_num_threads(config().torch_threads)
    return tracer.load(model_ref, transcoders_ref, device=settings().device)


@contextlib.contextmanager
def open_store_for_writes():
    """The store to write one graph into.

    Embedded: opened for each graph and closed after it, so that its one file lock is free for CLI
    queries between writes (about 0.1 s per graph, on the ingest worker only). Neo4j: one driver per
    process, kept open.
    """
    from circuit_atlas.store import is_neo4j_uri, open_store

    if is_neo4j_uri(settings().store):
        yield _server_store()
    else:
        with open_store(settings(), read_only=False) as store:
            yield store


@functools.cache
def _server_store():
    """connect(), not open_store().__enter__(): the context manager, once garbage-collected, would
    close the store (its driver) under the next task ("DriverError: Driver closed")."""
    from circuit_atlas.store import connect

    return connect(settings(), read_only=False)


def artifact_path(key: str, kind: str = "trace") -> Path:
    """This host's copy of a graph it traced, or of an intervention's record (nothing reads it from
    another host: both travel through redis)."""
    if kind == "intervene":
        from circuit_atlas.workers.interventions import artifact_path as record_path
        return record_path(settings().artifacts, key)
    return settings().artifacts / "graphs" / f"{key}.json"


def _artifact_bytes(path: Path) -> bytes:
    """The artifact file as it travels through redis: gzip'd (level 1: fast, graph JSON shrinks ~7x)."""
    import gzip

    return gzip.compress(path.read_bytes(), compresslevel=1, mtime=0)


def _write_artifact(graph, path: Path) -> None:
    """Write-then-rename: a reader (or a redelivered task) never sees half a file."""
    from circuit_atlas.ingest.write import write_graph_json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    write_graph_json(graph, tmp)
    os.replace(tmp, path)
