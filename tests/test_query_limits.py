"""User queries stop within their limits: time (limit + 1 s), memory (peak RSS under the cap), rows and bytes.

The huge row of issue 10, `UNWIND range(1, 20000000) AS x RETURN collect(x)`, took 41 s and 13.7 GB
with `--timeout 2 --max-rows 1` before. Peak memory is measured outside the code under test: the
CLI runs under a small wrapper process whose RUSAGE_CHILDREN.ru_maxrss is the largest peak RSS of any
process below it (the CLI and its query process), each reaped.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from circuit_atlas.store import (CypherError, QueryTimeoutError, ResultTooLargeError, TooManyRowsError,
                                 open_store)
from circuit_atlas.store.limits import QueryLimits
from circuit_atlas.store.query_process import QueryProcess, embedded_target
from circuit_atlas.synthetic import synthetic_graph
from tests.conftest import REPO

HUGE_ROW = "UNWIND range(1, 20000000) AS x RETURN collect(x) AS xs"
MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": out.returncode, "wall_s": time.monotonic() - start, "output": out.stdout + out.stderr,
                  "peak_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""
GiB = 1 << 30


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("limits") / "atlas.db")
    with open_store(path) as store:
        store.add_graphs([synthetic_graph(i, n_nodes=60, n_edges=300) for i in range(2)])
    return path


def measured_cli(store: str, env: dict, *args) -> dict:
    cmd = [sys.executable, "-m", "circuit_atlas", "--store", store, "cypher", *args]
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


TIMED_QUERY = """
import json, resource, subprocess, sys, time
from circuit_atlas.store import QueryLimitError, open_store
with open_store(sys.argv[1], read_only=True) as store:
    store.query("RETURN 1 AS warm", max_memory=sys.argv[3])      # the query process is up
    start = time.monotonic()
    try:
        store.query(sys.argv[2], timeout_s=2, max_rows=1, max_memory=sys.argv[3])
        outcome = "no error"
    except QueryLimitError as e:
        outcome = str(e)
    elapsed = time.monotonic() - start
print(json.dumps({"elapsed_s": elapsed, "outcome": outcome,
                  "peak_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


@pytest.mark.parametrize("max_memory", ["1G", "3G"])
def test_the_huge_row_stops_within_its_limits(small_store, cli_env, max_memory):
    """Issue 10's command: whichever limit comes first stops it (1 GiB: mostly the memory, here; 3 GiB:
    the 2 s deadline, as the collect grows at well under 1.5 GB/s). The CLI says so in one line with
    no process past the cap; the query's time, from sending it to the error (Python API, the query
    process up already, so that start-up is not counted), is at most timeout + 1 s."""
    cli = measured_cli(small_store, cli_env, HUGE_ROW, "--timeout", "2", "--max-rows", "1", "--max-memory", max_memory)
    out = subprocess.run([sys.executable, "-c", TIMED_QUERY, small_store, HUGE_ROW, max_memory], capture_output=True,
                         text=True, env=cli_env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    api = json.loads(out.stdout)
    print(f"max_memory {max_memory}: CLI peak RSS {cli['peak_rss'] / GiB:.2f} GiB: {cli['output'].strip()}\n"
          f"  API: stopped after {api['elapsed_s']:.2f} s, peak RSS {api['peak_rss'] / GiB:.2f} GiB: {api['outcome']}")
    cap = int(max_memory[0]) * GiB
    for outcome in (cli["output"], api["outcome"]):
        assert "timed out after 2 s" in outcome or f"more than {max_memory[0]} GiB of memory" in outcome, outcome
    assert cli["rc"] == 1 and cli["output"].count("\n") == 1 and "Traceback" not in cli["output"]
    assert cli["peak_rss"] < cap and api["peak_rss"] < cap
    assert api["elapsed_s"] <= 2 + 1


def test_the_memory_cap_holds_without_the_deadline(small_store, cli_env):
    huge = measured_cli(small_store, cli_env, HUGE_ROW, "--timeout", "300", "--max-rows", "1")
    print(f"huge row, 1 GiB, no deadline in reach: {huge['wall_s']:.2f} s, peak RSS {huge['peak_rss'] / GiB:.2f} GiB")
    assert huge["rc"] == 1 and "more than 1 GiB of memory" in huge["output"], huge["output"]
    assert huge["peak_rss"] < GiB


def test_the_deadline_through_the_python_api(small_store):
    """A query that computes without end (5 x 120 nodes, cross product) on the query process: stopped at
    its deadline, and the next query gets a new process."""
    endless = ("MATCH (a:Node), (b:Node), (c:Node), (d:Node), (e:Node) "
               "WHERE a.pos + b.pos + c.pos + d.pos + e.pos < 0 RETURN count(*) AS n")
    with open_store(small_store, read_only=True) as store:
        store.query("RETURN 1 AS warm")                     # the query process is up
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError, match="timed out after 1 s"):
            store.query(endless, timeout_s=1)
        assert time.monotonic() - start <= 1 + 1
        assert store.query("MATCH (g:Graph) RETURN count(*) AS n") == [{"n": 2}]   # a new process serves


def test_rows_and_bytes_are_capped_as_they_stream(small_store):
    query = "UNWIND range(1, 40) AS x RETURN x, lpad('', 100000, 'a') AS s"    # 40 rows of 100 kB
    with open_store(small_store, read_only=True) as store:
        assert len(store.query(query, max_bytes=5_000_000)) == 40
        with pytest.raises(ResultTooLargeError, match="more than 1.91 MiB"):
            store.query(query, max_bytes=2_000_000)
        with pytest.raises(TooManyRowsError, match="more than 39 rows"):
            store.query(query, max_rows=39)
    with open_store(small_store) as store:                  # in-process (read-write): the same caps
        with pytest.raises(ResultTooLargeError):
            store.query(query, max_bytes=2_000_000)
        with pytest.raises(TooManyRowsError):
            store.query(query, max_rows=39)


def test_an_engine_crash_stays_in_the_query_process(small_store):
    """kuzu 0.11.3 segfaults on `CALL read_csv_serial(...)` (the guard refuses it; sent here directly):
    the caller gets one error and the next query a fresh process."""
    limits = QueryLimits(timeout_s=30)
    with QueryProcess(embedded_target("kuzu", small_store, limits.max_memory), limits.max_memory) as qp:
        with pytest.raises(CypherError, match="database failed on this query"):
            qp.run(f"CALL read_csv_serial('{REPO / 'README.md'}') RETURN *", {}, limits)
        assert not qp.alive
    with QueryProcess(embedded_target("kuzu", small_store, limits.max_memory), limits.max_memory) as qp:
        assert qp.run("MATCH (g:Graph) RETURN count(*) AS n", {}, limits) == [{"n": 2}]


@pytest.mark.neo4j
def test_neo4j_huge_rows_stop_within_their_limits(request):
    """The server stops issue 10's huge row at the 2 s deadline (it sends nothing before); a row the
    server builds quickly, 20M integers, is stopped by the client's memory cap while the driver decodes it."""
    uri = request.getfixturevalue("neo4j_server")
    env = dict(request.getfixturevalue("cli_env"))                 # NEO4J_* of the session's server
    out = subprocess.run([sys.executable, "-c", TIMED_QUERY, uri, HUGE_ROW, "1G"], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    api = json.loads(out.stdout)
    print(f"neo4j huge row: stopped after {api['elapsed_s']:.2f} s, client peak RSS {api['peak_rss'] / GiB:.2f} GiB: "
          f"{api['outcome']}")
    assert "timed out after 2 s" in api["outcome"] and api["elapsed_s"] <= 2 + 1 and api["peak_rss"] < GiB
    cli = measured_cli(uri, env, "RETURN range(1, 20000000) AS r", "--timeout", "300", "--max-memory", "256M")
    print(f"neo4j 20M-integer row: {cli['wall_s']:.2f} s, client peak RSS {cli['peak_rss'] / GiB:.2f} GiB: "
          f"{cli['output'].strip()}")
    assert cli["rc"] == 1 and "more than 256 MiB of memory" in cli["output"] and cli["output"].count("\n") == 1
    assert cli["peak_rss"] < GiB // 4
