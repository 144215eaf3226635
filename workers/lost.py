"""Lost messages: kombu's redis transport pops a message and only then records it as unacked, so a redis
restart between the two loses it, and its item would wait forever. Every worker runs a sweeper thread
(workers/tasks.py); one of them at a time calls `sweep_lost_tasks` and sends the tasks it names again.
"""
from __future__ import annotations

import base64
import json

import redis

from circuit_atlas.workers.config import INGEST_QUEUE, TRACE_QUEUE
from circuit_atlas.workers.state import INGEST_TASK, QUEUED, TRACE_TASK, TRACED, TRACING

LOST_SUSPECTS = "ca:lost"    # set "<task>:<job id>:<index>" seen without a broker message at the last sweep
UNACKED = "unacked"          # kombu's hash of delivered, not yet acknowledged messages


def lost_tasks(r: redis.Redis) -> set[tuple[str, str, int]]:
    """(task, job id, index) of each unfinished item that no message in the broker will reach.

    The item states and the broker (both queues and kombu's unacked hash) are read in one
    MULTI, so a message moving between queue and unacked is never missed. An item that is
    queued or tracing needs a trace message; one that is traced needs an ingest message.
    """
    jobs = r.zrange("ca:jobs", 0, -1)
    # Cheap first: with at least as many messages as unfinished items, nothing is missing (or a
    # duplicate hides it until the queue drains; then the counts show it). Skips reading the queues.
    pipe = r.pipeline(transaction=True)
    for job_id in jobs:
        pipe.hget(f"ca:job:{job_id}", "pending")
    *pending, n_traces, n_ingests, n_unacked = pipe.llen(TRACE_QUEUE).llen(INGEST_QUEUE).hlen(UNACKED).execute()
    pending = [int(p or 0) for p in pending]
    if n_traces + n_ingests + n_unacked >= sum(pending):
        return set()
    open_jobs = [job_id for job_id, n in zip(jobs, pending) if n > 0]
    pipe = r.pipeline(transaction=True)
    for job_id in open_jobs:
        pipe.hgetall(f"ca:job:{job_id}:state")
    pipe.lrange(TRACE_QUEUE, 0, -1).lrange(INGEST_QUEUE, 0, -1).hvals(UNACKED)
    *states, traces, ingests, unacked = pipe.execute()
    needed = {(INGEST_TASK if state == TRACED else TRACE_TASK, job_id, int(i))
              for job_id, job_states in zip(open_jobs, states)
              for i, state in job_states.items() if state in (QUEUED, TRACING, TRACED)}
    raw = [json.loads(m) for m in traces + ingests] + [json.loads(m)[0] for m in unacked]
    return needed - {task for task in map(_task_of, raw) if task}

def sweep_lost_tasks(r: redis.Redis) -> list[tuple[str, str, int]]:
    """Tasks lost twice in a row (at this sweep and the one before); call at most every few seconds.

    Two sightings, because a message is briefly nowhere while a worker moves it from the queue
    to the unacked hash, and a traced item has no ingest message until its trace task sends one.
    """
    lost = {f"{task}:{job_id}:{index}": (task, job_id, index) for task, job_id, index in lost_tasks(r)}
    before = r.smembers(LOST_SUSPECTS)
    first_sightings = set(lost) - before
    pipe = r.pipeline()
    pipe.delete(LOST_SUSPECTS)
    if first_sightings:
        pipe.sadd(LOST_SUSPECTS, *first_sightings)
    pipe.execute()
    return sorted(lost[m] for m in set(lost) & before)


def _task_of(message: dict) -> tuple[str, str, int] | None:
    """(task, job id, index) of a kombu message as it lies in redis; None for anything else."""
    try:
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        job_id, index = json.loads(body)[0][:2]
        return message["headers"]["task"], job_id, int(index)
    except (KeyError, TypeError, ValueError, IndexError):
        return None

