"""A throwaway stack for tests and benchmarks: redis-server on a free loopback port, real worker
processes, a fresh store and artifact directory. Same commands as `circuit-atlas workers start`."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from circuit_atlas.workers.config import INGEST_QUEUE, TRACE_QUEUE
from circuit_atlas.workers.jobs import JobStatus, Jobs
from circuit_atlas.workers.local import start_worker, worker_env

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server with AOF (fsync on every write) in `data_dir`; stop() and start() keep the data."""

    def __init__(self, data_dir: Path):
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}: see {self.dir / 'redis.log'}")

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM): redis flushes the AOF and exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class LocalStack:
    """redis + store + artifacts under `root`, and worker processes started on demand.

    The store is a fresh embedded one under `root` unless `store` names another (a Neo4j URI).
    """

    def __init__(self, root: Path, *, visibility_timeout: int = 10, extra_env: dict | None = None,
                 store: str | None = None):
        self.root = Path(root)
        self.redis = RedisServer(self.root / "redis")
        self.store = store or str(self.root / "store")
        self.artifacts = self.root / "artifacts"
        self.env = {
            "CIRCUIT_ATLAS_REDIS_URL": self.redis.url,
            "CIRCUIT_ATLAS_STORE": self.store,
            "CIRCUIT_ATLAS_ARTIFACTS": str(self.artifacts),
            "CIRCUIT_ATLAS_VISIBILITY_TIMEOUT": str(visibility_timeout),
            "CIRCUIT_ATLAS_RESTORE_INTERVAL": "1",
            "CIRCUIT_ATLAS_LOST_TASK_CHECK": "2",
            "CIRCUIT_ATLAS_TORCH_THREADS": "1",
            **(extra_env or {}),
        }
        self.workers: dict[str, subprocess.Popen] = {}
        self.jobs = Jobs(self.redis.url)

    def start_worker(self, queue: str, name: str, host: str | None = None) -> subprocess.Popen:
        """host: run it "on another machine", with an artifact directory of its own (host_artifacts)."""
        env = self.env if host is None else {**self.env, "CIRCUIT_ATLAS_ARTIFACTS": str(self.host_artifacts(host))}
        proc = start_worker(queue, name, env=env, log=self.root / f"{name}.log")
        self.workers[name] = proc
        return proc

    def start_workers(self, n_trace: int, n_ingest: int = 1) -> None:
        for i in range(n_trace):
            self.start_worker(TRACE_QUEUE, f"trace{i + 1}")
        for i in range(n_ingest):
            self.start_worker(INGEST_QUEUE, f"ingest{i + 1}")

    def host_artifacts(self, host: str) -> Path:
        return self.root / "hosts" / host / "artifacts"

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker's main process and its pool process (its whole process group)."""
        proc = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_workers(self) -> None:
        """Warm shutdown of every worker: running tasks finish, the store is closed."""
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.workers.clear()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run `python -m circuit_atlas ARGS` against this stack."""
        return subprocess.run([sys.executable, "-m", "circuit_atlas", *args], env=worker_env(self.env),
                              capture_output=True, text=True, check=check, cwd=self.root)

    def submit(self, path: Path, *flags: str) -> str:
        return self.cli("jobs", "submit", str(path), *flags).stdout.strip()

    def wait(self, job_id: str, until=lambda st: not st.pending, timeout: float = 240) -> JobStatus:
        deadline = time.time() + timeout
        while True:
            st = self.jobs.status(job_id)
            if until(st):
                return st
            if time.time() > deadline:
                raise TimeoutError(f"job {job_id} stuck at {st.counts}; logs: {self.log_tails()}")
            time.sleep(0.2)

    def log_tails(self, n: int = 15) -> str:
        tails = []
        for log in sorted(self.root.glob("*.log")):
            tails.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-n:]))
        return "\n".join(tails)

    def close(self) -> None:
        self.stop_workers()
        self.redis.stop()
