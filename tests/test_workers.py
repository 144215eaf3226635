"""Bulk tracing jobs end to end: a real redis-server, real Celery worker processes, the real tracer on a
tiny model and the real store. Each test gets its own redis, store and workers (workers/testing.py)."""
from __future__ import annotations

import json
import os
import time

import pytest

from circuit_atlas.workers.jobfile import JobFileError, JobSpec, read_job_file, trace_key
from circuit_atlas.workers.testing import REDIS_SERVER, LocalStack
from tests.backends import BACKENDS, empty_store


def needs_redis(test):
    """A test on the real stack: redis-server plus worker processes (marked redis and slow)."""
    skip = pytest.mark.skipif(REDIS_SERVER is None,
                              reason="redis-server not installed (apt-get install -y redis-server)")
    return pytest.mark.redis(pytest.mark.slow(skip(test)))


WORDS = ["the", "cat", "dog", "sat", "on", "a", "mat", "and", "bird", "fish", "big", "red"]  # in the tiny vocab


def prompts(n: int, offset: int = 0) -> list[str]:
    """n short prompts with distinct tokens (the number is spelled digit by digit: "1 0 7")."""
    return [" ".join(WORDS[(i * 7 + j * 5) % len(WORDS)] for j in range(4)) + " " + " ".join(str(i + offset))
            for i in range(n)]


# -- job files (no redis) --

def test_job_file_rows_tags_and_errors(tmp_path):
    path = tmp_path / "job.jsonl"
    path.write_text(
        '{"job": {"model": "/m", "transcoders": "/t", "options": {"max_n_logits": 3}, "tags": {"set": "control"}}}\n'
        '{"prompt": "one two", "lang": "en", "n": 3}\n'
        '{"prompt": "broken\n'
        '{"lang": "fr"}\n'
        '["not", "an", "object"]\n'
        '{"prompt": "deux", "set": "suspect"}\n')
    spec, rows = read_job_file(path, {"transcoders": "/t2", "tags": {"run": "7"}})
    assert spec == JobSpec(model="/m", transcoders="/t2", options={"max_n_logits": 3},
                           tags={"set": "control", "run": "7"})
    assert [r.line for r in rows] == [2, 3, 4, 5, 6]
    assert rows[0].prompt == "one two" and rows[0].tags == {"lang": "en", "n": "3"}
    assert rows[1].error.startswith("job.jsonl line 3: not valid JSON")
    assert rows[2].error == 'job.jsonl line 4: missing or empty "prompt"'
    assert rows[3].error == 'job.jsonl line 5: expected an object with a "prompt", found list'
    assert rows[4].tags == {"set": "suspect"}


def test_csv_job_file_needs_model_and_checks_field_counts(tmp_path):
    path = tmp_path / "job.csv"
    path.write_text('prompt,lang\n"a, b",en\nc,fr,extra\n')
    with pytest.raises(JobFileError, match="no model given"):
        read_job_file(path)
    spec, rows = read_job_file(path, {"model": "/m", "transcoders": "/t"})
    assert rows[0].prompt == "a, b" and rows[0].tags == {"lang": "en"}
    assert rows[1].error == "job.csv line 3: expected 2 fields, found 3"



def test_a_relative_model_path_that_exists_here_is_made_absolute(tmp_path, monkeypatch):
    """A worker reads the path from its own working directory, not the submitter's."""
    (tmp_path / "ckpt" / "tc").mkdir(parents=True)
    path = tmp_path / "job.txt"
    path.write_text("one two\n")
    monkeypatch.chdir(tmp_path)
    spec, _ = read_job_file(path, {"model": "ckpt", "transcoders": "ckpt/tc"})
    assert (spec.model, spec.transcoders) == (str(tmp_path / "ckpt"), str(tmp_path / "ckpt" / "tc"))
    spec, _ = read_job_file(path, {"model": "models/elsewhere", "transcoders": "/models/tc"})
    assert (spec.model, spec.transcoders) == ("models/elsewhere", "/models/tc")    # the workers' own paths


def test_job_file_types_headers_and_intervention_targets(tmp_path):
    """What a job file may be, each wrong one refused with its reason (mutation survivors, issue 14)."""
    def job(name: str, text: str):
        path = tmp_path / name
        path.write_text(text)
        return path

    with pytest.raises(JobFileError, match=r"unknown job file type '\.tsv'; use \.jsonl, \.csv or \.txt"):
        read_job_file(job("job.tsv", "prompt\na\n"), {"model": "/m", "transcoders": "/t"})
    prompts = ["The capital of France is", " spaced  ", "a\x0cb", "caf\u00e9 \u2028 c"]   # as written
    _, rows = read_job_file(job("job.txt", "\ufeff" + "\r\n".join(prompts[:2]) + "\n\n  \n" + "\n".join(prompts[2:]) + "\n"),
                            {"model": "/m", "transcoders": "/t"})
    assert [(r.line, r.prompt, r.tags) for r in rows] == [(1, prompts[0], {}), (2, prompts[1], {}),
                                                          (5, prompts[2], {}), (6, prompts[3], {})]
    with pytest.raises(JobFileError, match="no model given"):
        read_job_file(job("job.txt", "a\n"))
    for text in ("text,lang\na,en\n", ""):            # no 'prompt' column; no header at all
        with pytest.raises(JobFileError, match="the first row must be a header with a 'prompt' column"):
            read_job_file(job("job.csv", text), {"model": "/m", "transcoders": "/t"})
    header = '{"job": {"model": "/m", "transcoders": "/t"}}\n{"prompt": "a"}\n'
    spec, _ = read_job_file(job("job.jsonl", header), {"model": None, "transcoders": "", "options": None})
    assert (spec.model, spec.transcoders) == ("/m", "/t")            # unset flags leave the header's values
    for targets in ('"supernode:x"', '[]', '["3/7", 5]'):           # not a list, empty, not all text
        with pytest.raises(JobFileError, match='needs "intervene": a list of targets'):
            read_job_file(job("job.jsonl", '{"job": {"kind": "intervene", "model": "/m", "transcoders": "/t", '
                                           f'"intervene": {targets}}}}}\n{{"prompt": "a"}}\n'))
    spec, rows = read_job_file(job("job.jsonl", '{"job": {"kind": "intervene", "model": "/m", "transcoders": "/t", '
                                                '"intervene": ["supernode:tag/x", "3/7"]}}\n{"prompt": "a"}\n'))
    assert spec.kind == "intervene" and spec.intervene == ["supernode:tag/x", "3/7"] and rows[0].prompt == "a"

def test_trace_key_depends_on_what_is_traced_only():
    spec = JobSpec("/m", "/t", {"max_n_logits": 10, "batch_size": 256}, tags={"set": "a"})
    same = JobSpec("/m", "/t", {"batch_size": 256, "max_n_logits": 10}, tags={"set": "b"})
    assert trace_key(spec, "hi") == trace_key(same, "hi")
    assert trace_key(spec, "hi") != trace_key(spec, "hi!")
    assert trace_key(spec, "hi") != trace_key(JobSpec("/m", "/t", {"max_n_logits": 5, "batch_size": 256}), "hi")
    assert trace_key(spec, "hi") != trace_key(JobSpec("/m2", "/t", spec.options), "hi")
    assert trace_key(spec, "hi") != trace_key(JobSpec("/m", "/t2", spec.options), "hi")


def test_status_counts_prompts_in_the_singular_and_plural():
    from circuit_atlas.cli.jobs import format_status
    from circuit_atlas.workers.jobs import JobStatus

    def status(n):
        return format_status(JobStatus("j1", "p.txt", "/m", "/t", 0.0, n, {"done": n})).splitlines()[1]
    assert status(1) == "  1 prompt: queued 0, running 0, done 1, failed 0"
    assert status(2) == "  2 prompts: queued 0, running 0, done 2, failed 0"


# -- the real stack --

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from circuit_atlas.tracer.testing import build_tiny_model

    model_dir, transcoders_dir = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    return str(model_dir), str(transcoders_dir)


@pytest.fixture
def stack(tmp_path):
    s = LocalStack(tmp_path)
    yield s
    s.close()


def write_job(path, tiny_model, rows: list, options: dict | None = None):
    model, transcoders = tiny_model
    header = {"job": {"model": model, "transcoders": transcoders,
                      "options": options or {"max_n_logits": 3, "batch_size": 64}}}
    lines = [json.dumps(header)] + [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def stored_graphs(stack) -> dict[str, dict]:
    """Every graph in the store, with its node and edge counts as stored (workers must be stopped)."""
    from circuit_atlas.store import open_store

    with open_store(stack.store, read_only=True) as store:
        graphs = store.query("MATCH (g:Graph) RETURN g.id AS id, g.prompt AS prompt, "
                             "g.n_nodes AS n_nodes, g.n_edges AS n_edges")
        nodes = {r["id"]: r["n"] for r in store.query(
            "MATCH (g:Graph)-[:HAS_NODE]->(n:Node) RETURN g.id AS id, count(n) AS n")}
        edges = {r["id"]: r["n"] for r in store.query(
            "MATCH (g:Graph)-[:HAS_NODE]->(:Node)-[e:EFFECT]->(:Node) RETURN g.id AS id, count(e) AS n")}
        tags = {r["id"]: r["tags"] for r in store.query(
            "MATCH (g:Graph)-[:TAGGED]->(t:Tag) RETURN g.id AS id, collect(t.id) AS tags")}
    assert len({g["id"] for g in graphs}) == len(graphs)
    return {g["id"]: {**g, "stored_nodes": nodes.get(g["id"], 0), "stored_edges": edges.get(g["id"], 0),
                      "tags": sorted(tags.get(g["id"], []))} for g in graphs}


def assert_complete_and_unique(stack, job_id, expected_prompts, artifact_dirs=None):
    """Every prompt stored exactly once, each graph whole: its nodes and edges match its artifact."""
    from circuit_atlas.ingest.formats import read_graph_file

    graphs = stored_graphs(stack)
    assert sorted(g["prompt"] for g in graphs.values()) == sorted(expected_prompts)
    job_graphs = stack.jobs.r.hgetall(f"ca:job:{job_id}:graph")
    assert set(job_graphs.values()) == set(graphs)
    for path in (p for d in artifact_dirs or [stack.artifacts] for p in (d / "graphs").glob("*.json")):
        traced = read_graph_file(path)
        stored = graphs[traced.id]
        assert (stored["stored_nodes"], stored["stored_edges"]) == (len(traced.nodes), traced.n_edges)
        assert (stored["n_nodes"], stored["n_edges"]) == (len(traced.nodes), traced.n_edges)
    return graphs


@needs_redis
def test_job_of_60_prompts_stores_every_graph_once_and_resubmission_skips(stack, tiny_model, tmp_path):
    texts = prompts(60)
    job = write_job(tmp_path / "job.jsonl", tiny_model,
                    [{"prompt": p, "lang": ["en", "fr"][i % 2], "set": "control"} for i, p in enumerate(texts)])
    stack.start_workers(n_trace=2)
    job_id = stack.submit(job)
    st = stack.wait(job_id)
    assert st.counts == {"done": 60}, st.errors
    assert st.graphs_per_hour > 0 and st.state == "done"
    assert len(stack.jobs.trace_seconds(job_id)) == 60

    again = stack.submit(job)                        # every prompt is known: nothing is queued
    st2 = stack.jobs.status(again)
    assert st2.counts == {"skipped": 60} and st2.finished
    out = stack.cli("jobs", "status", again).stdout
    assert "done 60 (60 skipped), failed 0" in out

    stack.stop_workers()
    graphs = assert_complete_and_unique(stack, job_id, texts)
    first = next(g for g in graphs.values() if g["prompt"] == texts[1])
    assert "lang=fr" in first["tags"] and "set=control" in first["tags"]
    listing = stack.cli("jobs", "list").stdout
    assert job_id in listing and again in listing


@needs_redis
def test_sigkill_trace_and_ingest_workers_mid_job(stack, tiny_model, tmp_path):
    texts = prompts(60, offset=100)
    job = write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts])
    stack.start_workers(n_trace=2, n_ingest=0)        # nothing is stored yet: the job is mid-way at any speed
    job_id = stack.submit(job)
    st = stack.wait(job_id, until=lambda st: st.counts.get("traced", 0) >= 1)
    assert st.pending == 60, st.counts
    stack.kill_worker("trace1")
    _kill_pool_process(stack.workers["trace2"].pid)  # the worker survives; reject_on_worker_lost requeues
    stack.start_worker("ingest", "ingest1")
    st = stack.wait(job_id, until=lambda st: st.counts.get("done", 0) >= 1)
    stack.kill_worker("ingest1")                     # (traced graphs left waiting, or none: both must end whole)
    stack.start_worker("ingest", "ingest2")
    st = stack.wait(job_id)
    assert st.counts == {"done": 60}, (st.errors, stack.log_tails())
    stack.stop_workers()
    assert_complete_and_unique(stack, job_id, texts)


@needs_redis
@pytest.mark.neo4j
def test_job_ingests_into_neo4j_with_two_ingest_workers(request, tiny_model, tmp_path):
    """Neo4j admits several writers: two ingest workers store one job's graphs side by side."""
    stack = LocalStack(tmp_path, store=empty_store(request, "neo4j", tmp_path))
    try:
        texts = prompts(30, offset=500)
        job = write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p, "set": "neo4j"} for p in texts])
        stack.start_workers(n_trace=2, n_ingest=2)
        job_id = stack.submit(job)
        st = stack.wait(job_id)
        assert st.counts == {"done": 30}, (st.errors, stack.log_tails())
        stack.stop_workers()
        graphs = assert_complete_and_unique(stack, job_id, texts)
        assert all("set=neo4j" in g["tags"] for g in graphs.values())
        for name in ("ingest1", "ingest2"):          # both wrote: each logs ingest tasks that succeeded
            log = (tmp_path / f"{name}.log").read_text()
            assert "Task workers.ingest[" in log and "succeeded" in log, f"{name} stored nothing:\n{log[-2000:]}"
    finally:
        stack.close()


@needs_redis
@pytest.mark.parametrize("backend", BACKENDS)
def test_workers_on_separate_hosts_share_only_redis_and_the_store(request, backend, tiny_model, tmp_path):
    """Several machines: every worker has its own artifact directory, as on hosts without a shared
    filesystem. Two trace hosts trace the job and go away (their directories with them); a trace task
    redelivered to a third host finds each graph in redis and traces nothing; ingest hosts (one for
    the embedded store, two for Neo4j) store every graph once; redis keeps no graph once stored."""
    import shutil

    from circuit_atlas.workers.state import ARTIFACT

    # no worker dies here: a visibility timeout longer than the test, so no slow task is delivered twice
    stack = LocalStack(tmp_path, store=empty_store(request, backend, tmp_path), visibility_timeout=600)
    try:
        n = 24
        texts = prompts(n, offset=600)
        job_id = stack.submit(write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts]))
        stack.start_worker("trace", "trace1", host="gpu1")
        stack.start_worker("trace", "trace2", host="gpu2")
        stack.wait(job_id, until=lambda st: st.counts.get("traced") == n)
        stack.stop_workers()
        assert len(stack.jobs.raw.keys(ARTIFACT + "*")) == n
        unplugged = []                                # the GPU hosts leave; only the test keeps their files
        for host in ("gpu1", "gpu2"):
            unplugged.append(shutil.move(stack.host_artifacts(host), tmp_path / f"unplugged-{host}"))
        assert sum(len(list((d / "graphs").glob("*.json"))) for d in unplugged) == n

        stack.jobs._queue_traces(job_id, list(range(n)))    # every trace delivered again, to a new host
        stack.start_worker("trace", "trace3", host="gpu3")
        redelivered = lambda: (tmp_path / "trace3.log").read_text().count("succeeded")  # noqa: E731
        stack.wait(job_id, until=lambda st: redelivered() == n)
        stack.stop_workers()
        log = (tmp_path / "trace3.log").read_text()
        assert log.count("'artifact found'") == n and "'traced'" not in log
        assert not (stack.host_artifacts("gpu3") / "graphs").exists()

        ingest_hosts = ["db1"] if backend == "embedded" else ["db1", "db2"]   # one writer on the embedded store
        for i, host in enumerate(ingest_hosts):
            stack.start_worker("ingest", f"ingest{i + 1}", host=host)
        st = stack.wait(job_id)
        assert st.counts == {"done": n}, (st.errors, stack.log_tails())
        stack.stop_workers()
        traces = sum((tmp_path / f"trace{i}.log").read_text().count("'traced'") for i in (1, 2))
        assert traces == n                            # each prompt traced once, on one host
        assert_complete_and_unique(stack, job_id, texts, artifact_dirs=unplugged)
        assert stack.jobs.raw.keys(ARTIFACT + "*") == []
        assert not any((stack.host_artifacts(h) / "graphs").exists() for h in ingest_hosts)
    finally:
        stack.close()


def _kill_pool_process(worker_pid: int) -> None:
    children = open(f"/proc/{worker_pid}/task/{worker_pid}/children").read().split()
    assert children, "the worker has no pool process"
    for pid in children:
        os.kill(int(pid), 9)


@needs_redis
def test_redis_restart_mid_job_loses_nothing(stack, tiny_model, tmp_path):
    texts = prompts(50, offset=200)
    job = write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts])
    stack.start_workers(n_trace=2, n_ingest=0)        # nothing is stored yet: the restart lands mid-job
    job_id = stack.submit(job)
    st = stack.wait(job_id, until=lambda st: st.counts.get("traced", 0) >= 1)
    assert st.pending == 50, st.counts
    stack.start_worker("ingest", "ingest1")            # starting while redis goes away
    stack.redis.stop()
    stack.redis.start()                                # same port, same AOF
    st = stack.wait(job_id)
    assert st.counts == {"done": 50}, (st.errors, stack.log_tails())
    stack.stop_workers()
    assert_complete_and_unique(stack, job_id, texts)


@needs_redis
def test_messages_the_broker_lost_are_sent_again(stack, tiny_model, tmp_path):
    from circuit_atlas.workers.state import INGEST_TASK, TRACE_TASK

    texts = prompts(4, offset=250)
    job_id = stack.submit(write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts]))
    assert stack.jobs.lost_tasks() == set()             # queued messages are found: no false alarm
    stack.jobs.r.delete("trace")                        # what a redis restart right after a BRPOP leaves
    lost = {(TRACE_TASK, job_id, i) for i in range(4)}
    assert stack.jobs.lost_tasks() == lost
    assert stack.jobs.sweep_lost_tasks() == []          # a first sighting is only a suspicion
    assert set(stack.jobs.sweep_lost_tasks()) == lost

    stack.start_workers(n_trace=1, n_ingest=0)          # the workers' sweeper sends the traces again
    st = stack.wait(job_id, until=lambda st: st.counts.get("traced") == 4, timeout=120)
    # a trace task marks its prompt traced just before it sends the ingest message: wait for all 4 messages
    deadline = time.monotonic() + 120
    while stack.jobs.r.llen("ingest") < 4:
        assert time.monotonic() < deadline, f"{stack.jobs.r.llen('ingest')} of 4 ingest messages sent in 120 s"
        time.sleep(0.1)
    stack.jobs.r.delete("ingest")                       # and now lose every ingest message
    assert stack.jobs.lost_tasks() == {(INGEST_TASK, job_id, i) for i in range(4)}
    stack.start_worker("ingest", "ingest1")
    st = stack.wait(job_id, timeout=120)
    assert st.counts == {"done": 4}
    assert "the broker lost the workers.ingest task of job" in stack.log_tails(50)
    stack.stop_workers()
    assert_complete_and_unique(stack, job_id, texts)


@needs_redis
def test_malformed_row_and_overlong_prompt_fail_alone(stack, tiny_model, tmp_path):
    texts = prompts(6, offset=300)
    too_long = " ".join(["cat"] * 5000)
    rows = [{"prompt": p} for p in texts[:3]] + ['{"prompt": "unterminated'] + \
           [{"prompt": too_long}] + [{"prompt": p} for p in texts[3:]]
    job = write_job(tmp_path / "job.jsonl", tiny_model, rows)
    job_id = stack.submit(job)
    # a prompt whose trace already killed its worker 3 times (what worker deaths leave behind)
    stack.jobs.r.hset(f"ca:job:{job_id}:attempts", 0, 3)
    stack.start_workers(n_trace=1)
    st = stack.wait(job_id)
    assert st.counts == {"done": 5, "failed": 3}
    out = stack.cli("jobs", "status", job_id).stdout
    assert "done 5, failed 3" in out
    assert "job.jsonl line 2: PoisonPrompt: its worker died 3 times while tracing it" in out
    assert "job.jsonl line 5: not valid JSON" in out
    assert "job.jsonl line 6: PromptTooLong" in out

    # traceable failures are retried (the poison one succeeds now that its count is reset); the
    # over-long prompt fails again, alone, with the same error; the malformed row is not retried
    assert stack.cli("jobs", "retry-failed", job_id).stdout.strip() == f"requeued 2 failed prompts of job {job_id}"
    st = stack.wait(job_id)
    assert st.counts == {"done": 6, "failed": 2}
    assert [e.split(":")[0] for e in st.errors] == ["job.jsonl line 5", "job.jsonl line 6"]

    missing = stack.cli("jobs", "status", "nope", check=False)
    assert missing.returncode == 1 and "no job 'nope'" in missing.stderr
    stack.stop_workers()
    assert_complete_and_unique(stack, job_id, texts)


@needs_redis
def test_cancel_drops_queued_prompts(stack, tiny_model, tmp_path):
    job = write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in prompts(5, offset=400)])
    job_id = stack.submit(job)                          # no workers: everything stays queued
    assert stack.cli("jobs", "cancel", job_id).stdout.strip() == f"cancelled 5 queued prompts of job {job_id}"
    elsewhere = stack.cli("jobs", "submit", str(job), "--model", "/models/not-here")     # a path on other hosts
    assert elsewhere.stderr == ("Warning: model /models/not-here: not found on this machine; workers elsewhere "
                                "must find it there, or each prompt fails\n")
    stack.cli("jobs", "cancel", elsewhere.stdout.strip())
    st = stack.jobs.status(job_id)
    assert st.counts == {"cancelled": 5} and st.state == "cancelled" and st.finished
    assert "cancelled 5" in stack.cli("jobs", "status", job_id).stdout
    stack.start_workers(n_trace=1, n_ingest=0)          # the queued messages find their items cancelled
    broker_empty = lambda st: stack.jobs.r.llen("trace") == 0 and stack.jobs.r.hlen("unacked") == 0  # noqa: E731
    stack.wait(job_id, until=broker_empty, timeout=120)
    assert stack.jobs.trace_seconds(job_id) == [] and not stack.artifacts.exists()


# -- what submit queues (a real redis, no workers: nothing moves while the test looks) --

def _states(stack, job_id) -> list[str]:
    states = stack.jobs.r.hgetall(f"ca:job:{job_id}:state")
    return [states[str(i)] for i in range(len(states))]


@needs_redis
def test_duplicate_prompts_in_a_job_are_traced_once(stack, tiny_model, tmp_path):
    a, b, c = prompts(3, offset=600)
    job = write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in (a, b, a, c, b, a)])
    job_id = stack.jobs.submit(job)
    assert _states(stack, job_id) == ["queued", "queued", "skipped", "queued", "skipped", "skipped"]
    errors = stack.jobs.r.hgetall(f"ca:job:{job_id}:error")      # line 1 is the header
    assert errors == {"2": "same prompt as line 2", "4": "same prompt as line 3", "5": "same prompt as line 2"}
    assert stack.jobs.r.llen("trace") == 3                         # one trace task per distinct prompt
    assert stack.jobs.status(job_id).pending == 3


@needs_redis
def test_resubmission_with_other_transcoders_is_traced_again(stack, tiny_model, tmp_path):
    """The registry of traced prompts is keyed by what was traced: a graph made with one transcoder set
    is never reused for a job that names another, or other options (issue 14)."""
    import shutil

    model, transcoders = tiny_model
    other = tmp_path / "other-transcoders"
    shutil.copytree(transcoders, other)
    texts = prompts(3, offset=700)
    job = write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts])
    first = stack.jobs.submit(job)
    items = stack.jobs.r.hgetall(f"ca:job:{first}:items")
    for i, item in items.items():                                  # what the ingest task records once stored
        stack.jobs.register_graph(json.loads(item)["key"], f"graph{i}")

    assert _states(stack, stack.jobs.submit(job)) == ["skipped"] * 3              # same everything: reused
    assert _states(stack, stack.jobs.submit(job, {"transcoders": str(other)})) == ["queued"] * 3
    assert _states(stack, stack.jobs.submit(job, {"options": {"max_n_logits": 4}})) == ["queued"] * 3
    assert _states(stack, stack.jobs.submit(job)) == ["skipped"] * 3


@needs_redis
def test_python_submission_is_the_job_file_path(stack, tiny_model, tmp_path, monkeypatch):
    """Jobs.submit_trace (what audits call) and a job file record the same items and trace keys: a file
    job after a Python job of the same prompts, model and options finds every graph stored (the Python
    job names the model by a relative path, the file by its absolute one)."""
    from pathlib import Path

    from circuit_atlas.tracer import TraceConfig

    model, transcoders = tiny_model
    texts = prompts(3, offset=900)
    monkeypatch.chdir(Path(model).parent)
    first = stack.jobs.submit_trace(Path(model).name, str(transcoders), [texts[0], (texts[1], {"lang": "en"}), texts[2], " "],
                                    TraceConfig(max_n_logits=4), tags={"set": "suspect"}, source="audit x")
    items = [json.loads(v) for _, v in sorted(stack.jobs.r.hgetall(f"ca:job:{first}:items").items(), key=lambda kv: int(kv[0]))]
    assert [i["prompt"] for i in items] == [*texts, None]
    assert items[1]["tags"] == {"set": "suspect", "lang": "en"} and items[0]["tags"] == {"set": "suspect"}
    assert _states(stack, first) == ["queued"] * 3 + ["failed"]
    assert stack.jobs.status(first).errors == ["audit x line 4: missing or empty prompt"]
    for item in items[:3]:                                         # what the ingest task records once stored
        stack.jobs.register_graph(item["key"], f"graph-{item['line']}")

    job = write_job(tmp_path / "job.jsonl", tiny_model, [{"prompt": p} for p in texts], {"max_n_logits": 4})
    assert _states(stack, stack.jobs.submit(job)) == ["skipped"] * 3             # same keys: reused
    assert _states(stack, stack.jobs.submit(job, {"options": {"max_n_logits": 5}})) == ["queued"] * 3
