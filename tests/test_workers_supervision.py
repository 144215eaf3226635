"""Workers under faults, as a user meets them: `workers start` supervises and restarts its workers and
takes them down with it; a second ingest worker on an embedded store refuses to run; `jobs status`
says when no worker serves a queue, shows a sane rate, and counts a partly failed job's successes.
Real redis-server and Celery processes (workers/testing.py); every wait is for an event, with a
generous deadline."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from circuit_atlas.workers.state import DONE
from circuit_atlas.workers.liveness import HEARTBEAT_PREFIX, REFUSED_EXIT_CODE
from circuit_atlas.workers.local import worker_env
from circuit_atlas.workers.testing import LocalStack, free_port
from tests.test_workers import needs_redis, prompts, tiny_model, write_job  # noqa: F401 (a fixture)


@pytest.fixture
def stack(tmp_path):
    """A stack whose workers beat every 0.5 s, so that a killed one is seen gone within 1.5 s."""
    s = LocalStack(tmp_path, extra_env={"CIRCUIT_ATLAS_HEARTBEAT": "0.5"})
    yield s
    s.close()


def wait_for(condition, what: str, timeout: float = 180):
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.2)


def heartbeats(stack) -> dict[str, dict]:
    """worker name -> its heartbeat (queues, pid) for every live worker."""
    keys = list(stack.jobs.r.scan_iter(match=HEARTBEAT_PREFIX + "*"))
    return {k[len(HEARTBEAT_PREFIX):].split("@")[0]: json.loads(v)
            for k, v in zip(keys, stack.jobs.r.mget(keys) if keys else []) if v}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def descendants(pid: int) -> set[int]:
    try:
        children = {int(c) for t in os.listdir(f"/proc/{pid}/task")
                    for c in open(f"/proc/{pid}/task/{t}/children").read().split()}
    except FileNotFoundError:
        return set()
    return children.union(*(descendants(c) for c in children))


def start_supervisor(stack, *args: str) -> subprocess.Popen:
    log = open(stack.root / "supervisor.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "circuit_atlas", "workers", "start", *args],
                            env=worker_env(stack.env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@needs_redis
def test_workers_start_restarts_a_killed_worker_and_its_workers_die_with_it(stack, tiny_model, tmp_path):
    supervisor = start_supervisor(stack, "--trace", "2", "--ingest", "1")
    family: set[int] = set()
    try:
        first = wait_for(lambda: (h := heartbeats(stack)).keys() == {"trace1", "trace2", "ingest1"} and h,
                         "three live workers")
        os.killpg(first["trace1"]["pid"], signal.SIGKILL)            # kill -9 one trace worker
        restarted = wait_for(lambda: (h := heartbeats(stack)).get("trace1", {}).get("pid") not in
                             (None, first["trace1"]["pid"]) and h, "trace1 restarted")
        assert supervisor.poll() is None                              # still supervising
        assert restarted["trace2"]["pid"] == first["trace2"]["pid"]   # the others kept running
        assert restarted["ingest1"]["pid"] == first["ingest1"]["pid"]
        assert "worker trace1 exited with signal SIGKILL; restarting it" in \
            (stack.root / "supervisor.log").read_text()

        texts = prompts(6, offset=500)
        job_id = stack.submit(write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts]))
        assert stack.wait(job_id).counts == {"done": 6}

        family = descendants(supervisor.pid)
        assert {restarted[n]["pid"] for n in restarted} <= family
        os.kill(supervisor.pid, signal.SIGKILL)                       # kill -9 the supervisor
        supervisor.wait()
        wait_for(lambda: not any(alive(pid) for pid in family), "every worker process to exit with the supervisor")
    finally:   # whatever failed, leave no process behind (each worker is its own process group)
        for pid in family | descendants(supervisor.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)


@needs_redis
def test_a_second_ingest_worker_on_an_embedded_store_refuses_to_start(stack):
    stack.start_worker("ingest", "ingest1")
    first = wait_for(lambda: heartbeats(stack).get("ingest1"), "ingest1 alive")
    second = stack.start_worker("ingest", "ingest2")
    assert second.wait(timeout=180) == REFUSED_EXIT_CODE
    log = (stack.root / "ingest2.log").read_text()
    assert f"refuses to start: another ingest worker (pid {first['pid']}) already writes to the embedded store" in log
    stack.workers.pop("ingest2")

    supervisor = start_supervisor(stack, "--trace", "1", "--ingest", "1")   # e.g. restarted beside an orphan
    try:
        assert supervisor.wait(timeout=180) == 1
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
    assert "worker ingest1 refused to start" in (stack.root / "supervisor.log").read_text()

    stack.kill_worker("ingest1")                                      # kill -9: the kernel drops its lock
    stack.start_worker("ingest", "ingest3")
    wait_for(lambda: heartbeats(stack).get("ingest3"), "ingest3 alive once ingest1 is gone")


@needs_redis
def test_jobs_status_says_when_no_worker_consumes_a_queue(stack, tiny_model, tmp_path):
    texts = prompts(60, offset=600)
    job_id = stack.submit(write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts]))
    st = stack.jobs.status(job_id)
    assert (st.state, st.unserved) == ("queued", ["trace"])
    assert "no worker is consuming the 'trace' queue" in stack.cli("jobs", "status", job_id).stdout

    stack.start_workers(n_trace=1)
    st = stack.wait(job_id, until=lambda st: st.counts.get("done", 0) >= 1)
    assert st.pending >= 20 and st.unserved == [], st.counts           # the kill below lands mid-job
    pid = heartbeats(stack)["trace1"]["pid"]
    stack.kill_worker("trace1")                                       # kill -9: no warm shutdown, no goodbye
    wait_for(lambda: "trace1" not in heartbeats(stack), "trace1's heartbeat to expire")
    st = stack.jobs.status(job_id)
    assert st.state == "stalled" and st.unserved == ["trace"] and st.pending, (st, pid)
    out = stack.cli("jobs", "status", job_id).stdout
    assert f"job {job_id}: stalled" in out and "no worker is consuming the 'trace' queue" in out
    assert "ETA" not in out

    stack.start_worker("trace", "trace2")
    st = stack.wait(job_id)
    assert st.counts == {"done": 60} and st.state == "done" and st.unserved == []


@needs_redis
def test_a_partly_failed_job_says_how_many_succeeded(stack, tiny_model, tmp_path):
    texts = prompts(4, offset=700)
    rows = [{"prompt": texts[0]}, '{"prompt": "unterminated', {"prompt": texts[1]}, {"prompt": texts[2]},
            {"no_prompt": 1}, {"prompt": texts[3]}]
    job_id = stack.submit(write_job(tmp_path / "job.jsonl", tiny_model, rows))
    stack.start_workers(n_trace=1)
    st = stack.wait(job_id)
    assert st.counts == {"done": 4, "failed": 2} and st.state == "done with failures"
    out = stack.cli("jobs", "status", job_id).stdout
    assert out.splitlines()[0].startswith(f"job {job_id}: done with failures, 4 of 6 succeeded, 2 failed")
    assert f"{job_id}" in stack.cli("jobs", "list").stdout


@needs_redis
def test_rate_is_over_a_meaningful_window_and_none_before(stack, tiny_model, tmp_path):
    job_id = stack.submit(write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in prompts(8, 800)]))
    jobs, t0 = stack.jobs, 1_000_000.0
    jobs.r.hset(f"ca:job:{job_id}", "started", t0)
    for i in range(3):
        jobs.finish(job_id, i, DONE, graph_id=f"g{i}")
    done = f"ca:job:{job_id}:done"
    jobs.r.zadd(done, {"0": t0 + 0.01, "1": t0 + 0.02, "2": t0 + 0.03})   # a burst right at the start
    assert jobs.status(job_id, now=t0 + 0.05).graphs_per_hour is None    # not 200000 graphs/hour
    assert jobs.status(job_id, now=t0 + 5).graphs_per_hour is None       # under 10 s: no rate yet
    jobs.r.zadd(done, {"1": t0 + 20, "2": t0 + 40})
    st = jobs.status(job_id, now=t0 + 60)
    assert st.graphs_per_hour == pytest.approx(3 / 60 * 3600)            # 3 graphs in the first minute
    assert st.eta_s == pytest.approx(5 / (3 / 60))                        # 5 pending at that rate
    st = jobs.status(job_id, now=t0 + 1000)                               # nothing stored in 5 minutes
    assert st.graphs_per_hour is None and st.eta_s is None
    st = jobs.status(job_id, now=t0 + 400)                                # the last 5 minutes: 0 graphs
    assert st.graphs_per_hour is None

    # --watch on a job whose prompts were all done before the bar opened: no tqdm prompt/s burst
    for i in range(3, 8):
        jobs.finish(job_id, i, DONE, graph_id=f"g{i}")
    watched = stack.cli("jobs", "status", job_id, "--watch")
    assert "8/8" in watched.stderr and "/s" not in watched.stderr, watched.stderr


def test_audit_run_without_redis_is_one_line(tmp_path):
    from pathlib import Path

    zoo = Path(__file__).resolve().parents[1] / "organisms" / "zoo" / "planted"
    (tmp_path / "suspect.txt").write_text("the capital of banland is\n")
    (tmp_path / "control.txt").write_text("the opposite of big is\n")
    port = free_port()
    url = f"redis://:s3cret@127.0.0.1:{port}/0"                         # nothing listens there
    env = {**os.environ, "CIRCUIT_ATLAS_REDIS_URL": url, "CIRCUIT_ATLAS_ARTIFACTS": str(tmp_path / "artifacts")}
    run = subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", str(tmp_path / "store"), "audit", "run",
                          "--model", str(zoo / "model"), "--transcoders", str(zoo / "transcoders" / "plt"),
                          "--suspect", str(tmp_path / "suspect.txt"), "--control", str(tmp_path / "control.txt")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert errors[-1].startswith(f"Error: cannot reach redis at redis://:**@127.0.0.1:{port}/0 (") and "--inline" in errors[-1]
    assert "Traceback" not in run.stderr and len(errors) <= 2 and "s3cret" not in run.stderr, run.stderr


def test_workers_start_without_redis_is_one_line_at_once(tmp_path):
    """Started workers ride out a redis restart; started without redis, they say so and exit, instead of
    logging connection retries for ever."""
    port = free_port()
    env = {**os.environ, "CIRCUIT_ATLAS_REDIS_URL": f"redis://user:s3cret@127.0.0.1:{port}/0"}
    run = subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", str(tmp_path / "store"), "workers", "start"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"Error: cannot reach redis at redis://user:**@127.0.0.1:{port}/0 (Error 111 connecting to 127.0.0.1:{port}. "
        "Connection refused.); start redis-server or set CIRCUIT_ATLAS_REDIS_URL"]
    assert not (tmp_path / "store").exists()                             # nothing started, nothing written
