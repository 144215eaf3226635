"""Jobs: submit, watch and control bulk tracing jobs, and the tasks' view of their items.

The state lives in redis (its keys, states and atomic transitions: workers/state.py); lost broker
messages are found by workers/lost.py.
"""
from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from circuit_atlas.workers import lost
from circuit_atlas.workers.config import INGEST_QUEUE, TRACE_QUEUE
from circuit_atlas.workers.jobfile import JobSpec, Row, as_workers_see_it, read_job_file, trace_key
from circuit_atlas.workers.state import (ADVANCE, ARTIFACT, CANCELLED, DONE, FAILED, FINISH, INGEST_PENDING,
                                         MAX_ARTIFACT_BYTES, PUT_ARTIFACT, QUEUED, REGISTRY, SKIPPED, TRACE_TASK,
                                         TRACED, TRACING, connect)

RATE_WINDOW_S = 300.0        # a running job's rate: graphs stored over the last 5 minutes ...
MIN_RATE_S = 10.0            # ... and none before 10 s of it have passed


class JobNotFound(KeyError):
    """No job with this id in redis."""

    def __str__(self) -> str:
        return f"no job {self.args[0]!r}; `circuit-atlas jobs list` shows the known jobs"


@dataclass(frozen=True)
class Item:
    index: int
    line: int
    prompt: str | None
    tags: dict
    key: str | None
    error: str | None = None     # set for rows that were malformed in the job file
    target: str | None = None    # an intervention job's target (supernode:ID, L/F, ...) for this prompt


@dataclass
class JobStatus:
    id: str
    file: str
    model: str
    transcoders: str
    created: float
    n: int
    counts: dict[str, int]                       # state -> number of items
    started: float | None = None                 # first trace began
    finished: float | None = None                # last item reached a terminal state
    cancelled: bool = False
    graphs_per_hour: float | None = None         # graphs stored per hour: over the whole job once it is
                                                 # finished, else over the last RATE_WINDOW_S (None until
                                                 # MIN_RATE_S and 2 graphs make a meaningful rate)
    eta_s: float | None = None                   # seconds until every item is terminal, at that rate
    errors: list[str] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)  # queues this job waits on that no live worker consumes

    @property
    def pending(self) -> int:
        return sum(self.counts.get(s, 0) for s in (QUEUED, TRACING, TRACED))

    @property
    def succeeded(self) -> int:
        return self.counts.get(DONE, 0) + self.counts.get(SKIPPED, 0)

    @property
    def state(self) -> str:
        if self.pending:
            if self.cancelled:
                return "cancelling"
            if not self.started:
                return "queued"
            return "stalled" if self.unserved else "running"
        if self.cancelled:
            return "cancelled"
        if not self.counts.get(FAILED):
            return "done"
        return "done with failures" if self.succeeded else "failed"


class Jobs:
    """Job state for one redis; the CLI, the tasks and the tests all go through it."""

    def __init__(self, redis_url: str):
        self.url = redis_url
        self.r = connect(redis_url)
        self._finish = self.r.register_script(FINISH)
        self._advance = self.r.register_script(ADVANCE)
        self._put_artifact = self.r.register_script(PUT_ARTIFACT)
        self.raw = connect(redis_url, decode=False)       # artifacts are bytes

    # -- submitting and controlling jobs (CLI side) --

    def submit(self, path: str | Path, overrides: dict | None = None, store: str | None = None) -> str:
        """Record the job of a job file (`circuit-atlas jobs submit`) and queue it; returns its id.

        A trace job goes through `submit_trace`, as a Python caller's prompts do. An intervention job
        (kind "intervene") has one item per (prompt, target); its supernode targets are read from `store`
        here, once, so the workers never open the store to read.
        """
        spec, rows = read_job_file(path, overrides)
        if spec.kind != "intervene":
            return self.submit_trace(spec.model, spec.transcoders, rows, trace_config(spec.options, path),
                                     tags=spec.tags, source=str(path))
        from circuit_atlas.workers import interventions

        spec = interventions.prepare(spec, path, store)
        rows = [dataclasses.replace(row, target=t) for row in rows for t in spec.intervene]
        keys = [None if row.error else interventions.item_key(spec, row.prompt, row.target) for row in rows]
        return self._record(spec, rows, keys, str(path))

    def submit_trace(self, model: str, transcoders: str, prompts, config=None, *, tags: dict | None = None,
                     source: str = "python") -> str:
        """Record a trace job and queue a trace task per prompt that is not traced yet; returns its id.

            jobs.submit_trace("/models/tiny", "/models/tiny-plt",
                              ["The capital of France is", ("La capitale de la France est", {"lang": "fr"})],
                              TraceConfig(max_n_logits=5), tags={"set": "capitals"})

        `prompts`: strings, (prompt, tags) pairs or job-file Rows; `config`: a tracer.TraceConfig (its
        defaults when None); `tags` go on every prompt (a prompt's own win); `source` names the job in
        `jobs status` and in its error lines ("<source> line <n>", n counting prompts from 1).
        """
        from circuit_atlas import tracer

        config = config if config is not None else tracer.TraceConfig()
        rows = [_as_row(i, p, source) for i, p in enumerate(prompts, start=1)]
        spec = JobSpec(model=as_workers_see_it(model), transcoders=as_workers_see_it(transcoders),
                       options=dataclasses.asdict(config),
                       tags={k: str(v) for k, v in (tags or {}).items()})
        return self._record(spec, rows, [None if row.error else trace_key(spec, row.prompt) for row in rows], source)

    def _record(self, spec: JobSpec, rows: list[Row], keys: list[str | None], source: str) -> str:
        """Write a job's spec and items to redis, then queue its traces (prompts stored already are skipped)."""
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        stored = self._registry_lookup([k for k in keys if k])
        items, states, errors, graphs, first_line = {}, {}, {}, {}, {}
        for i, (row, key) in enumerate(zip(rows, keys)):
            items[i] = _item_json(spec, row, key)
            if row.error:
                states[i], errors[i] = FAILED, row.error
            elif key in stored:
                states[i], graphs[i] = SKIPPED, stored[key]
            elif key in first_line:
                states[i], errors[i] = SKIPPED, f"same prompt as line {first_line[key]}"
            else:
                states[i], first_line[key] = QUEUED, row.line
        pending = sum(s == QUEUED for s in states.values())
        job = f"ca:job:{job_id}"
        pipe = self.r.pipeline()
        pipe.hset(job, mapping={"spec": json.dumps(dataclasses.asdict(spec)), "file": source,
                                "created": now, "n": len(rows), "pending": pending, "cancelled": 0,
                                **({} if pending else {"finished": now})})
        for suffix, mapping in (("items", items), ("state", states), ("error", errors), ("graph", graphs)):
            if mapping:
                pipe.hset(f"{job}:{suffix}", mapping=mapping)
        pipe.zadd("ca:jobs", {job_id: now})
        pipe.execute()
        self._queue_traces(job_id, [i for i, state in states.items() if state == QUEUED])
        return job_id

    def status(self, job_id: str, now: float | None = None) -> JobStatus:
        job = self.r.hgetall(f"ca:job:{job_id}")
        if not job:
            raise JobNotFound(job_id)
        spec = json.loads(job["spec"])
        states = self.r.hgetall(f"ca:job:{job_id}:state")
        errors = self.r.hgetall(f"ca:job:{job_id}:error")
        st = JobStatus(
            id=job_id, file=job["file"], model=spec["model"], transcoders=spec["transcoders"],
            created=float(job["created"]), n=int(job["n"]), counts=dict(Counter(states.values())),
            started=_float(job.get("started")), finished=_float(job.get("finished")),
            cancelled=job.get("cancelled") == "1",
            errors=[errors[i] for i in sorted(errors, key=int) if states.get(i) == FAILED])
        now = now or time.time()
        if st.started:
            st.graphs_per_hour = self._rate(job_id, st, now)
            if st.graphs_per_hour and st.pending:
                st.eta_s = st.pending / st.graphs_per_hour * 3600
        if st.pending:
            st.unserved = self._unserved(st)
        return st

    def _rate(self, job_id: str, st: JobStatus, now: float) -> float | None:
        """Graphs per hour: the whole job's once finished; while running, the graphs stored in the last
        RATE_WINDOW_S over that window, and none before MIN_RATE_S have passed and 2 graphs are stored
        (a first graph 0.01 s after the start is no rate; a stalled job's rate falls to none)."""
        done = f"ca:job:{job_id}:done"
        if not st.pending:
            stored = self.r.zcard(done)
            span = (st.finished or now) - st.started
            return stored / span * 3600 if stored and span > 0 else None
        start = max(st.started, now - RATE_WINDOW_S)
        if now - start < MIN_RATE_S:
            return None
        stored = self.r.zcount(done, start, now)
        return stored / (now - start) * 3600 if stored >= 2 else None

    def _unserved(self, st: JobStatus) -> list[str]:
        """The queues holding this job's work that no live worker consumes (workers/liveness.py)."""
        from circuit_atlas.workers.liveness import live_workers

        served = {q for queues in live_workers(self.r).values() for q in queues}
        waiting = []
        if st.counts.get(QUEUED, 0) + st.counts.get(TRACING, 0) and TRACE_QUEUE not in served:
            waiting.append(TRACE_QUEUE)
        if st.counts.get(TRACED, 0) and INGEST_QUEUE not in served:
            waiting.append(INGEST_QUEUE)
        return waiting

    def list(self) -> list[JobStatus]:
        return [self.status(job_id) for job_id in self.r.zrange("ca:jobs", 0, -1)]

    def cancel(self, job_id: str) -> int:
        """Stop a job: queued items become cancelled now; traces already running finish."""
        self._require(job_id)
        self.r.hset(f"ca:job:{job_id}", "cancelled", 1)
        states = self.r.hgetall(f"ca:job:{job_id}:state")
        return sum(self.finish(job_id, int(i), CANCELLED) for i, s in states.items() if s == QUEUED)

    def retry_failed(self, job_id: str) -> int:
        """Queue failed prompts again (not malformed rows: fix the file and submit it again)."""
        self._require(job_id)
        job = f"ca:job:{job_id}"
        retried = []
        for i, state in self.r.hgetall(f"{job}:state").items():
            if state == FAILED and json.loads(self.r.hget(f"{job}:items", i)).get("prompt") is not None:
                retried.append(int(i))
        if not retried:
            return 0
        pipe = self.r.pipeline()
        for i in retried:
            pipe.hset(f"{job}:state", i, QUEUED).hdel(f"{job}:error", i).hdel(f"{job}:attempts", i)
        pipe.hincrby(job, "pending", len(retried)).hdel(job, "finished").hset(job, "cancelled", 0)
        pipe.execute()
        self._queue_traces(job_id, retried)
        return len(retried)

    # -- the tasks' side --

    def spec(self, job_id: str) -> JobSpec:
        raw = self.r.hget(f"ca:job:{job_id}", "spec")
        if raw is None:
            raise JobNotFound(job_id)
        return JobSpec(**json.loads(raw))

    def file(self, job_id: str) -> str:
        path = self.r.hget(f"ca:job:{job_id}", "file")
        if path is None:
            raise JobNotFound(job_id)
        return path

    def item(self, job_id: str, index: int) -> Item:
        raw = self.r.hget(f"ca:job:{job_id}:items", index)
        if raw is None:
            raise JobNotFound(job_id)
        return Item(index=index, **json.loads(raw))

    def graphs(self, job_id: str) -> list[tuple[Item, str]]:
        """The job's stored graphs: (item, graph id) for each item that is done or skipped."""
        job = f"ca:job:{job_id}"
        self._require(job_id)
        items, states, graph_ids = (self.r.pipeline().hgetall(f"{job}:items").hgetall(f"{job}:state")
                                    .hgetall(f"{job}:graph").execute())
        return [(Item(index=int(i), **json.loads(items[i])), graph_ids[i]) for i in sorted(graph_ids, key=int)
                if graph_ids[i] and states.get(i) in (DONE, SKIPPED)]

    def look(self, job_id: str, index: int) -> tuple[Item, str | None, bool, str | None]:
        """(item, its state, job cancelled?, graph id stored under its key) in two round trips."""
        job = f"ca:job:{job_id}"
        raw, state, cancelled = (self.r.pipeline().hget(f"{job}:items", index).hget(f"{job}:state", index)
                                 .hget(job, "cancelled").execute())
        if raw is None:
            raise JobNotFound(job_id)
        item = Item(index=index, **json.loads(raw))
        return item, state, cancelled == "1", self.stored_graph(item.key) if item.key else None

    def begin_trace(self, job_id: str, index: int) -> int:
        """Mark an item as tracing; returns how many times its trace task has been delivered."""
        pipe = self.r.pipeline()
        pipe.hsetnx(f"ca:job:{job_id}", "started", time.time())
        self._advance(keys=[f"ca:job:{job_id}:state"], args=[index, TRACING], client=pipe)
        pipe.hincrby(f"ca:job:{job_id}:attempts", index, 1)
        return pipe.execute()[-1]

    def traced(self, job_id: str, index: int, trace_s: float | None) -> None:
        """Mark an item traced (its artifact is written) and offer it to a running ingest batch."""
        pipe = self.r.pipeline()
        if trace_s is not None:
            pipe.hset(f"ca:job:{job_id}:trace_s", index, trace_s)
        self._advance(keys=[f"ca:job:{job_id}:state"], args=[index, TRACED], client=pipe)
        pipe.sadd(INGEST_PENDING, f"{job_id}:{index}")
        pipe.execute()

    def claim_ingest(self, n: int) -> list[tuple[str, int]]:
        """Take up to n traced items for an ingest batch (each is taken by one batch at most)."""
        if n <= 0:
            return []
        members = self.r.spop(INGEST_PENDING, n) or []
        return [(m.rsplit(":", 1)[0], int(m.rsplit(":", 1)[1])) for m in members]

    def unclaim_ingest(self, job_id: str, index: int) -> None:
        self.r.srem(INGEST_PENDING, f"{job_id}:{index}")

    def finish(self, job_id: str, index: int, state: str, *, error: str = "", graph_id: str = "") -> bool:
        """Move an item to a terminal state (once; False if it already was)."""
        job = f"ca:job:{job_id}"
        keys = [f"{job}:state", f"{job}:error", f"{job}:graph", f"{job}:done", job]
        return bool(self._finish(keys=keys, args=[index, state, error, graph_id, time.time()]))

    def trace_seconds(self, job_id: str) -> list[float]:
        return [float(v) for v in self.r.hvals(f"ca:job:{job_id}:trace_s")]

    def stored_graph(self, key: str) -> str | None:
        """The graph id the workers stored for this trace key, if any."""
        return self.r.hget(REGISTRY, key)

    def register_graph(self, key: str, graph_id: str) -> None:
        """Record that `key` is stored as `graph_id`; its artifact has done its job and goes."""
        self.r.pipeline().hset(REGISTRY, key, graph_id).delete(ARTIFACT + key).execute()

    # -- traced graphs on their way to the store --

    def put_artifact(self, key: str, data: bytes) -> bool:
        """Keep a traced graph (gzip'd JSON) for any ingest worker on any host; False if its key is
        stored already. Durable like the rest of the job state (redis AOF)."""
        if len(data) >= MAX_ARTIFACT_BYTES:
            raise ValueError(f"the traced graph of trace key {key} is {len(data):,} bytes compressed, over redis's "
                             f"{MAX_ARTIFACT_BYTES:,}-byte value limit; prune it harder (node_threshold, "
                             "edge_threshold, max_feature_nodes)")
        return bool(self._put_artifact(keys=[REGISTRY, ARTIFACT + key], args=[key, data], client=self.raw))

    def artifact(self, key: str) -> bytes | None:
        return self.raw.get(ARTIFACT + key)

    def has_artifact(self, key: str) -> bool:
        return bool(self.r.exists(ARTIFACT + key))

    # -- lost messages (workers/lost.py) --

    def lost_tasks(self) -> set[tuple[str, str, int]]:
        return lost.lost_tasks(self.r)

    def sweep_lost_tasks(self) -> list[tuple[str, str, int]]:
        return lost.sweep_lost_tasks(self.r)

    # -- helpers --

    def _queue_traces(self, job_id: str, indices: list[int]) -> None:
        """One trace message per item, over one broker connection (this redis, whatever the env says)."""
        from circuit_atlas.workers.app import app  # the Celery app, only when sending; tasks.py is the receiver

        with app.connection_for_write(self.url) as conn:
            for i in indices:
                app.send_task(TRACE_TASK, (job_id, i), connection=conn, ignore_result=app.conf.task_ignore_result)

    def _registry_lookup(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        return {k: g for k, g in zip(keys, self.r.hmget(REGISTRY, keys)) if g is not None}

    def _require(self, job_id: str) -> None:
        if not self.r.exists(f"ca:job:{job_id}"):
            raise JobNotFound(job_id)


def trace_config(options: dict, path):
    """A job file's tracing options as a tracer.TraceConfig; JobFileError names the file and the known options."""
    from circuit_atlas.workers.jobfile import JobFileError
    from circuit_atlas import tracer

    try:
        return tracer.TraceConfig(**options)
    except (TypeError, ValueError) as e:
        names = ", ".join(f.name for f in dataclasses.fields(tracer.TraceConfig))
        raise JobFileError(f"{path}: bad tracing options {options}: {e}; known options: {names}") from None


def _as_row(n: int, prompt, source: str) -> Row:
    """A prompt given to submit_trace as a job item: a Row as it is, else the n-th prompt (an empty one
    fails alone, as a job file's empty row does)."""
    if isinstance(prompt, Row):
        return prompt
    text, tags = (prompt, {}) if isinstance(prompt, str) else prompt
    if not isinstance(text, str) or not text.strip():
        return Row(line=n, prompt=None, tags={}, error=f"{source} line {n}: missing or empty prompt")
    return Row(line=n, prompt=text, tags={str(k): str(v) for k, v in tags.items()})


def _item_json(spec: JobSpec, row: Row, key: str | None) -> str:
    if row.error:
        return json.dumps({"line": row.line, "prompt": None, "tags": {}, "key": None, "error": row.error})
    extra = {"target": row.target} if row.target is not None else {}
    return json.dumps({"line": row.line, "prompt": row.prompt, "tags": {**spec.tags, **row.tags}, "key": key,
                       **extra}, ensure_ascii=False)


def _float(value) -> float | None:
    return None if value is None else float(value)
