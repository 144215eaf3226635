"""Run the workers on one machine without Docker: N trace workers and one ingest worker.

Each worker is its own `celery -A workers.app worker` process with one pool process, so each
trace worker holds one copy of the model and the OS spreads them over the cores. The commands
are the ones documented in docs/workers.md; tests start them the same way.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from circuit_atlas.workers.config import INGEST_QUEUE, TRACE_QUEUE
from circuit_atlas.workers.liveness import REFUSED_EXIT_CODE


def worker_command(queue: str, name: str, loglevel: str = "INFO") -> list[str]:
    """argv of one worker consuming `queue` with a single pool process."""
    return [sys.executable, "-m", "celery", "-A", "circuit_atlas.workers.app", "worker",
            "-Q", queue, "-n", f"{name}@%h", "--concurrency", "1", "--pool", "prefork",
            "--loglevel", loglevel, "--without-gossip", "--without-mingle", "--without-heartbeat"]


def worker_env(extra: dict | None = None) -> dict:
    """The environment for a worker: ours, plus any overrides."""
    return {**os.environ, **(extra or {})}


def start_worker(queue: str, name: str, *, env: dict | None = None, log: Path | None = None,
                 loglevel: str = "INFO", die_with_parent: bool = False) -> subprocess.Popen:
    """One worker process in its own process group; with `die_with_parent` the kernel sends it SIGTERM
    (a warm shutdown) when this process dies, even by kill -9, so a supervisor leaves no orphans."""
    out = open(log, "ab") if log else None
    return subprocess.Popen(worker_command(queue, name, loglevel), env=worker_env(env),
                            stdout=out, stderr=subprocess.STDOUT if out else None,
                            start_new_session=True,
                            preexec_fn=_die_with(os.getpid()) if die_with_parent else None)


def _die_with(parent_pid: int):
    """preexec_fn: PR_SET_PDEATHSIG(SIGTERM) on Linux (kept across exec); elsewhere nothing."""
    def set_death_signal() -> None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            return
        PR_SET_PDEATHSIG = 1
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0 and os.getppid() != parent_pid:
            os._exit(1)   # the parent died before the death signal was armed
    return set_death_signal if sys.platform.startswith("linux") else None


@dataclass
class Supervised:
    queue: str
    name: str
    proc: subprocess.Popen
    started: float
    failures: int = 0                 # quick deaths in a row (backoff); reset once it runs for a while
    restart_at: float | None = None   # when a dead worker is started again


def run_workers(n_trace: int, n_ingest: int, *, env: dict | None = None, loglevel: str = "INFO",
                say=print, stable_s: float = 60.0, max_backoff_s: float = 60.0) -> int:
    """Start the workers and supervise them until Ctrl-C or SIGTERM, which stop them all (warm shutdown).

    A worker that dies (kill -9, out of memory) is started again, after a backoff that doubles while it
    keeps dying within `stable_s` of its start; the others keep working. A worker that refuses to run
    (a second ingest worker on an embedded store) stops everything. The workers die with this process
    (Linux: PR_SET_PDEATHSIG), so killing it, even with kill -9, leaves no orphans.
    """
    specs = [(TRACE_QUEUE, f"trace{i + 1}") for i in range(n_trace)] + \
            [(INGEST_QUEUE, f"ingest{i + 1}") for i in range(n_ingest)]
    start = lambda queue, name: start_worker(queue, name, env=env, loglevel=loglevel, die_with_parent=True)  # noqa: E731
    workers = [Supervised(q, n, start(q, n), time.monotonic()) for q, n in specs]
    stopping = threading.Event()

    def stop(*_):
        stopping.set()
        for w in workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    refused = None
    try:
        while not stopping.wait(0.5) and refused is None:
            now = time.monotonic()
            for w in workers:
                rc = w.proc.poll()
                if rc is None:
                    if w.failures and now - w.started > stable_s:
                        w.failures = 0
                elif rc == REFUSED_EXIT_CODE:
                    refused = w
                elif w.restart_at is None:
                    w.failures = w.failures + 1 if now - w.started < stable_s else 1
                    delay = min(max_backoff_s, 2.0 ** (w.failures - 1) - 1)
                    w.restart_at = now + delay
                    say(f"worker {w.name} exited with {_exit_text(rc)}; restarting it"
                        + (f" in {delay:.0f}s" if delay >= 1 else ""), flush=True)
                elif now >= w.restart_at:
                    w.proc, w.started, w.restart_at = start(w.queue, w.name), now, None
    except KeyboardInterrupt:
        pass
    if refused is not None:
        say(f"worker {refused.name} refused to start (its error is above); stopping the others", flush=True)
    stop()
    for w in workers:
        w.proc.wait()
    return 1 if refused is not None else 0


def _exit_text(rc: int) -> str:
    return f"signal {signal.Signals(-rc).name}" if rc < 0 else f"code {rc}"
