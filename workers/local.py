"""Run the workers on one machine without Docker: N trace workers and one ingest worker.

Each worker is its own `celery -A workers.app worker` process with one pool process, so each
trace worker holds one copy of the model and the OS spreads them over the cores. The commands
are the ones documented in docs/workers.md; tests start them the same way.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from circuit_atlas.workers.config import INGEST_QUEUE, TRACE_QUEUE


def worker_command(queue: str, name: str, loglevel: str = "INFO") -> list[str]:
    """argv of one worker consuming `queue` with a single pool process."""
    return [sys.executable, "-m", "celery", "-A", "circuit_atlas.workers.app", "worker",
            "-Q", queue, "-n", f"{name}@%h", "--concurrency", "1", "--pool", "prefork",
            "--loglevel", loglevel, "--without-gossip", "--without-mingle", "--without-heartbeat"]


def worker_env(extra: dict | None = None) -> dict:
    """The environment for a worker: ours, plus any overrides."""
    return {**os.environ, **(extra or {})}


def start_worker(queue: str, name: str, *, env: dict | None = None, log: Path | None = None,
                 loglevel: str = "INFO") -> subprocess.Popen:
    out = open(log, "ab") if log else None
    return subprocess.Popen(worker_command(queue, name, loglevel), env=worker_env(env),
                            stdout=out, stderr=subprocess.STDOUT if out else None,
                            start_new_session=True)


def run_workers(n_trace: int, n_ingest: int, *, env: dict | None = None, loglevel: str = "INFO") -> int:
    """Start the workers and wait; Ctrl-C or SIGTERM stops them all (warm shutdown)."""
    procs = [start_worker(TRACE_QUEUE, f"trace{i + 1}", env=env, loglevel=loglevel) for i in range(n_trace)]
    procs += [start_worker(INGEST_QUEUE, f"ingest{i + 1}", env=env, loglevel=loglevel) for i in range(n_ingest)]

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    stop()
    for p in procs:
        p.wait()
    return max((p.returncode or 0) for p in procs)
