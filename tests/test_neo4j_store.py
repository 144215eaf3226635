"""The Neo4j backend's own promises, on a real server: writers racing for node uids, a writer killed
mid-graph, and every read in a READ-mode transaction.

(The backend-independent contract runs on Neo4j too: test_store.py, test_ingest.py, ... via `store_uri`.)
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

import pytest

from circuit_atlas.store import open_store
from circuit_atlas.synthetic import synthetic_graph
from tests.backends import empty_store
from tests.test_store import counts, expected_counts

pytestmark = pytest.mark.neo4j


@pytest.fixture
def neo4j_uri(request, tmp_path) -> str:
    return empty_store(request, "neo4j", tmp_path)


def race(neo4j_uri, monkeypatch, caplog, allocator: str, taken: int, graphs) -> None:
    """Two writers, one per graph, each handed the numbers from `taken` on by its first call of
    Neo4jBackend.`allocator` (as a writer that bypassed the counter would take them), after waiting for
    the other: both must succeed, one of them through the retry path."""
    from circuit_atlas.store.neo4j import Neo4jBackend

    barrier = threading.Barrier(2, timeout=60)
    first_call = threading.local()
    allocate = getattr(Neo4jBackend, allocator)

    def racing_allocate(self, n):
        if getattr(first_call, "done", False):
            return allocate(self, n)
        first_call.done = True                           # the first attempt of each writer: the same numbers
        barrier.wait()
        return taken

    monkeypatch.setattr(Neo4jBackend, allocator, racing_allocate)
    results, errors = {}, []

    def write(graph):
        try:
            with open_store(neo4j_uri) as store:
                results[graph.id] = store.add_graph(graph)
        except Exception as e:                           # noqa: BLE001 — reported by the assertion below
            errors.append(e)

    caplog.set_level(logging.INFO, logger="circuit_atlas.store.neo4j")
    threads = [threading.Thread(target=write, args=(g,)) for g in graphs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert results == {g.id: True for g in graphs}
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries, "the writers did not collide: the retry path was not exercised"


def test_two_writers_racing_for_the_same_uids_both_succeed(neo4j_uri, monkeypatch, caplog):
    """Both writers are handed the same uids for their first attempt (as a writer that bypassed the
    uid counter would take them) and wait for each other before writing: the uniqueness constraint
    fails one, which retries with uids from the counter. Both graphs end up stored, whole, with
    distinct uids."""
    graphs = [synthetic_graph(seed, n_nodes=300, n_edges=3000, n_feature_ids=400) for seed in (1, 2)]
    with open_store(neo4j_uri) as store:                 # something stored already: uids start above 0
        store.add_graph(synthetic_graph(3, n_nodes=50, n_edges=200))
        before = counts(store)
        taken = store.query("MATCH (n:Node) RETURN max(n.uid) + 1 AS uid")[0]["uid"]
    race(neo4j_uri, monkeypatch, caplog, "allocate_uids", taken, graphs)
    with open_store(neo4j_uri, read_only=True) as store:
        after = counts(store)
        uids = store.query("MATCH (n:Node) RETURN count(*) AS n, count(DISTINCT n.uid) AS distinct_uids")[0]
        for g in graphs:
            assert store.get_graph(g.id).n_edges == g.n_edges
    assert uids["n"] == uids["distinct_uids"] == after["nodes"]
    assert after["graphs"] == before["graphs"] + 2
    assert after["nodes"] == before["nodes"] + sum(len(g.nodes) for g in graphs)
    assert after["edges"] == before["edges"] + sum(g.n_edges for g in graphs)


def test_two_writers_numbering_neighbour_identities_alike_both_succeed(neo4j_uri, monkeypatch, caplog):
    """Both writers are handed the same NeighbourEnd numbers for their first graph's new identities
    (as a writer that bypassed the counter would take them) and wait for each other before writing:
    NeighbourEnd.id's uniqueness fails one, which retries with numbers from the counter. No two
    identities share a number, and the Neighbour rows equal a recomputation from the stored edges."""
    from tests.test_aggregates import assert_exact

    # features of their own (a writer would wait at the barrier holding feature locks the other needs);
    # the tokens and error layers they share are stored first, so each writer's new identities are its own
    graphs = [synthetic_graph(seed, n_nodes=300, n_edges=3000, n_feature_ids=400, transcoder_set=f"synthetic/clt{seed}")
              for seed in (1, 2)]
    with open_store(neo4j_uri) as store:                 # identities numbered already: the race starts above 0
        store.add_graph(synthetic_graph(3, n_nodes=300, n_edges=3000, n_feature_ids=400))
        taken = store.query("MATCH (e:NeighbourEnd) RETURN max(e.id) + 1 AS id")[0]["id"]
    race(neo4j_uri, monkeypatch, caplog, "allocate_neighbour_end_ids", taken, graphs)
    with open_store(neo4j_uri, read_only=True) as store:
        ends = store.query("MATCH (e:NeighbourEnd) RETURN count(*) AS n, count(DISTINCT e.id) AS ids, "
                           "count(DISTINCT e.key) AS keys")[0]
        assert ends["n"] == ends["ids"] == ends["keys"]
        assert_exact(store)


OLDER_LAYOUTS = {   # how each older layout left a database, the refusal it gets, and a row only it has
    "string-keyed Neighbour rows": (
        ["MATCH (a:Neighbour) SET a.id = 'f\x1fup\x1f' + toString(a.id)", "MATCH (e:NeighbourEnd) DETACH DELETE e"],
        "made before the integer-keyed Neighbour aggregates",
        "MATCH (a:Neighbour) WHERE a.id STARTS WITH 'f' RETURN count(*) AS n"),
    "one HAS_NEIGHBOUR link type for both directions": (
        ["MATCH (f:Feature)-[r:HAS_UPSTREAM|HAS_DOWNSTREAM]->(a:Neighbour) CREATE (f)-[:HAS_NEIGHBOUR]->(a) DELETE r"],
        "links its Neighbour rows by the older HAS_NEIGHBOUR",
        "MATCH ()-[r:HAS_NEIGHBOUR]->() RETURN count(*) AS n"),
}


@pytest.mark.parametrize("layout", OLDER_LAYOUTS)
def test_a_database_of_an_older_neighbour_layout_is_refused(neo4j_uri, layout):
    """A database written by an older layout of the Neighbour aggregates: a read-write open refuses it
    in one line, before writing anything."""
    from circuit_atlas.store import StoreError

    statements, message, its_rows = OLDER_LAYOUTS[layout]
    with open_store(neo4j_uri) as store:
        store.add_graph(synthetic_graph(3, n_nodes=150, n_edges=1000))
        for statement in statements:
            store._backend.run(statement)
    with pytest.raises(StoreError, match=message) as refused:
        with open_store(neo4j_uri):
            pass
    assert "\n" not in str(refused.value)
    with open_store(neo4j_uri, read_only=True) as store:   # untouched
        assert store.query(its_rows)[0]["n"] > 0


KILL_SCRIPT = """
import sys, time
from circuit_atlas.store import neo4j, open_store
from circuit_atlas.store import statements as st
from circuit_atlas.synthetic import synthetic_graph
small = synthetic_graph(1, n_nodes=100, n_edges=500)
graph = synthetic_graph(12345, n_nodes=4000, n_edges=int(sys.argv[2]), n_feature_ids=50_000)
print(graph.id, small.id, flush=True)
send = neo4j.send_graph
def announced(run, g, first_uid, edge_batch=10_000, allocate=None):   # say where the writer is, so the test kills it there
    sent = []
    def run_and_tell(cypher, params):
        out = run(cypher, params)
        if cypher == st.CREATE_EFFECTS and g.id == graph.id:
            sent.append(1)
            if len(sent) == 3:
                print("effects", flush=True)      # 30k of the graph's edges sent, inside its transaction
                if sys.argv[3] == "pause-mid-transaction":
                    time.sleep(600)
        return out
    return send(run_and_tell, g, first_uid, edge_batch, allocate)
neo4j.send_graph = announced
with open_store(sys.argv[1]) as store:
    print("writing", flush=True)
    store.add_graphs([small, graph])
print("done", flush=True)
"""


def test_library_statements_log_no_server_notifications(neo4j_uri, caplog):
    """A statement naming a property no node has yet (as the layout check does on a new database) gets a
    server notification; the driver would log it to the user as a warning, so the store turns them off."""
    with caplog.at_level(logging.INFO), open_store(neo4j_uri, read_only=False) as store:
        store._backend.run("MATCH (n:Node) RETURN n.never_written_property_x AS x", read=True)
    assert not [r for r in caplog.records if r.name.startswith("neo4j")
                and "notification" in r.getMessage().lower()], caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("where", ["pause-mid-transaction", "while-sending"])
def test_kill_9_mid_graph_leaves_no_trace(neo4j_uri, cli_env, where):
    """kill -9 of a writer inside a graph's transaction: the server rolls it back, nothing of that
    graph is left, what was committed before stays, and the same ingest afterwards stores it whole.
    (On Neo4j a batch is atomic per graph: the small graph before it is committed on its own.)"""
    with open_store(neo4j_uri) as store:
        store.add_graph(synthetic_graph(7, n_nodes=200, n_edges=2000))
        before = counts(store)
    n_edges = 50_000                                      # 5 batches; the kill lands after the 3rd
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, neo4j_uri, str(n_edges), where],
                            stdout=subprocess.PIPE, text=True, env=cli_env)
    gid, small_gid = proc.stdout.readline().split()
    assert proc.stdout.readline().strip() == "writing"
    assert proc.stdout.readline().strip() == "effects"
    assert proc.poll() is None, "the writer finished before it could be killed: make the graph bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    small = synthetic_graph(1, n_nodes=100, n_edges=500)
    with open_store(neo4j_uri, read_only=True) as store:
        assert not store.has_graph(gid)
        assert store.query("MATCH (n:Node {gid: $gid}) RETURN count(*) AS n", {"gid": gid}) == [{"n": 0}]
        assert store.has_graph(small_gid)                # committed in its own transaction, before
        now, added = counts(store), expected_counts([small])
        assert {k: now[k] - before[k] for k in added if k != "features"} == {k: v for k, v in added.items()
                                                                            if k != "features"}
    rerun = subprocess.run([sys.executable, "-c", KILL_SCRIPT, neo4j_uri, str(n_edges), "run"], capture_output=True,
                           text=True, env=cli_env, timeout=600)
    assert rerun.stdout.split() == [gid, small_gid, "writing", "effects", "done"], rerun.stderr
    with open_store(neo4j_uri, read_only=True) as store:
        big = synthetic_graph(12345, n_nodes=4000, n_edges=n_edges, n_feature_ids=50_000)
        assert big.id == gid and store.get_graph(gid).n_edges == big.n_edges
        after = counts(store)
        uids = store.query("MATCH (n:Node) RETURN count(*) AS n, count(DISTINCT n.uid) AS distinct_uids")[0]
    assert after["graphs"] == before["graphs"] + 2 and uids["n"] == uids["distinct_uids"]


PROBE = "UNWIND [1] AS one CREATE (g:Graph {id: 'written-by-a-read'}) RETURN g.id AS id"


@pytest.mark.parametrize("path", ["Store.query", "queries.run", "Store.get_graph", "Store.existing_graphs"])
def test_every_read_runs_in_a_read_transaction(neo4j_uri, monkeypatch, path):
    """Each read path of a read-WRITE store, its statement swapped for a write: the server itself
    refuses it, which it does only in a READ transaction (a read sent in a write session would write)."""
    import dataclasses

    from circuit_atlas import queries
    from circuit_atlas.store import ReadOnlyQueryError, statements as st

    graph = synthetic_graph(5, n_nodes=50, n_edges=200)
    with open_store(neo4j_uri) as store:
        store.add_graph(graph)
        if path == "Store.query":
            call = lambda: store.query(PROBE)                                   # noqa: E731
        elif path == "queries.run":
            q = queries.get("hubs-by-graphs")
            monkeypatch.setitem(queries.QUERIES, q.name, dataclasses.replace(q, cypher=PROBE))
            call = lambda: queries.run(store, "hubs-by-graphs")                 # noqa: E731
        elif path == "Store.get_graph":
            monkeypatch.setattr(st, "GET_NODES", PROBE)
            call = lambda: store.get_graph(graph.id)                           # noqa: E731
        else:
            monkeypatch.setattr(st, "EXISTING_GRAPHS", "UNWIND $ids AS x " + PROBE)
            call = lambda: store.existing_graphs([graph.id])                   # noqa: E731
        with pytest.raises(ReadOnlyQueryError, match="read-only"):
            call()
    monkeypatch.undo()
    with open_store(neo4j_uri, read_only=True) as store:
        assert store.query("MATCH (g:Graph {id: 'written-by-a-read'}) RETURN count(*) AS n") == [{"n": 0}]
