"""Phase 1 through the workers: submit the audit's job file and wait for its graphs to be stored."""
from __future__ import annotations

import time

from circuit_atlas.audit.prompts import AuditInputError


def submit(settings, job_file) -> str:
    from circuit_atlas.workers.jobs import Jobs
    return Jobs(settings.redis_url).submit(job_file)


def wait_for_graphs(settings, job_id: str, *, timeout_s: float, poll_s: float = 2.0) -> tuple[dict[str, str], list[str]]:
    """Block until every prompt of the job is terminal; returns (graph id -> prompt set, failure lines)."""
    from circuit_atlas.workers.jobs import Jobs

    jobs = Jobs(settings.redis_url)
    deadline = time.monotonic() + timeout_s
    while (status := jobs.status(job_id)).pending:
        if time.monotonic() > deadline:
            raise AuditInputError(f"job {job_id}: not finished after {timeout_s:.0f}s "
                                  f"({status.pending} of {status.n} prompts pending); are workers running? "
                                  "(`circuit-atlas jobs workers`, or use --inline)")
        time.sleep(poll_s)
    graph_sets = {graph_id: item.tags.get("set", "") for item, graph_id in jobs.graphs(job_id)}
    return graph_sets, list(status.errors)
