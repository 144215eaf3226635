"""Phase 1 through the workers: submit the audit's prompts as a job and wait for their graphs to be stored."""
from __future__ import annotations

import logging
import time

from circuit_atlas.audit.prompts import AuditInputError

log = logging.getLogger(__name__)


def submit(settings, model: str, transcoders: str, prompts, config, *, audit_id: str) -> str:
    """Queue the audit's prompts ((prompt, {"set": name}) pairs) as one trace job, tagged with the audit's id."""
    import redis

    from circuit_atlas.workers.jobs import Jobs
    from circuit_atlas.workers.state import ping_once, shown

    try:
        ping_once(settings.redis_url)
    except redis.RedisError as e:
        raise AuditInputError(f"cannot reach redis at {shown(settings.redis_url)} ({e}); start redis-server and "
                              "`circuit-atlas workers start`, set CIRCUIT_ATLAS_REDIS_URL, "
                              "or trace in this process with --inline") from None
    return Jobs(settings.redis_url).submit_trace(model, transcoders, prompts, config, tags={"audit": audit_id},
                                                 source=f"audit {audit_id}")


def wait_for_graphs(settings, job_id: str, *, timeout_s: float, poll_s: float = 2.0) -> tuple[dict[str, str], list[str]]:
    """Block until every prompt of the job is terminal; returns (graph id -> prompt set, failure lines)."""
    from circuit_atlas.workers.jobs import Jobs

    jobs = Jobs(settings.redis_url)
    deadline = time.monotonic() + timeout_s
    told = []
    while (status := jobs.status(job_id)).pending:
        if status.unserved != told and status.unserved:
            log.warning("job %s waits: no worker is consuming the %s queue; start one with "
                        "`circuit-atlas workers start`", job_id, " and ".join(status.unserved))
        told = status.unserved
        if time.monotonic() > deadline:
            raise AuditInputError(f"job {job_id}: not finished after {timeout_s:.0f}s "
                                  f"({status.pending} of {status.n} prompts pending); are workers running? "
                                  "(`circuit-atlas workers start`, or use --inline)")
        time.sleep(poll_s)
    graph_sets = {graph_id: item.tags.get("set", "") for item, graph_id in jobs.graphs(job_id)}
    return graph_sets, list(status.errors)
