"""Which workers are alive, and the one-writer rule of the embedded store.

Heartbeats: every worker's main process refreshes `ca:worker:<name>` = {"queues", "pid", "since"} every
`heartbeat` seconds, with an expiry of three beats; a warm shutdown deletes it, a killed worker's key
expires. `jobs status` reads them to say when no worker is consuming a queue that has work.

Ingest lock: a worker consuming the ingest queue of an embedded store holds an exclusive flock on
`<store>.ingest.lock` for its lifetime (the kernel drops it when the process dies, even by kill -9), so
a second ingest worker on the same store refuses to start instead of silently sharing the writer role.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

HEARTBEAT_PREFIX = "ca:worker:"
REFUSED_EXIT_CODE = 78       # EX_CONFIG: a worker that must not run here; a supervisor does not restart it


def beat(r, name: str, queues: list[str], interval: float, since: float) -> None:
    r.set(HEARTBEAT_PREFIX + name, json.dumps({"queues": queues, "pid": os.getpid(), "since": since}),
          px=int(3 * interval * 1000))


def start_heartbeat(r, name: str, queues: list[str], interval: float) -> threading.Thread:
    """A daemon thread that beats on the client `r` until the process ends; a redis outage only skips beats."""
    since = time.time()

    def run() -> None:
        while True:
            try:
                beat(r, name, queues, interval, since)
            except Exception:  # noqa: BLE001 — redis is restarting: the next beat tries again
                pass
            time.sleep(interval)

    thread = threading.Thread(target=run, name="heartbeat", daemon=True)
    thread.start()
    return thread


def forget(r, name: str) -> None:
    r.delete(HEARTBEAT_PREFIX + name)


def live_workers(r) -> dict[str, list[str]]:
    """worker name -> the queues it consumes, for every worker whose heartbeat has not expired."""
    keys = list(r.scan_iter(match=HEARTBEAT_PREFIX + "*", count=1000))
    values = r.mget(keys) if keys else []
    return {k[len(HEARTBEAT_PREFIX):]: json.loads(v)["queues"] for k, v in zip(keys, values) if v}


class IngestLockHeld(RuntimeError):
    """Another ingest worker writes to this embedded store."""


def lock_ingest(store: str) -> int:
    """Take the store's ingest lock for this process's lifetime; returns the lock's file descriptor."""
    path = Path(f"{store}.ingest.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise IngestLockHeld(f"another ingest worker (pid {holder}) already writes to the embedded store {store}; "
                             "it admits one writer. Stop that worker first, or use a Neo4j store for several "
                             "ingest workers") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
