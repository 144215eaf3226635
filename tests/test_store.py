"""The store contract on every backend: counts, idempotency, round trips, read-only queries, locking."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from circuit_atlas.store import (CypherError, GraphNotFoundError, QueryTimeoutError, ReadOnlyQueryError, StoreError,
                                 StoreLockedError, TooManyRowsError, open_store)
from circuit_atlas.synthetic import synthetic_graph
from tests.backends import WRITE_PATHS
from tests.conftest import REPO

COUNTS = {
    "graphs": "MATCH (g:Graph) RETURN count(*) AS n",
    "nodes": "MATCH (n:Node) RETURN count(*) AS n",
    "edges": "MATCH (:Node)-[e:EFFECT]->(:Node) RETURN count(*) AS n",
    "has_node": "MATCH (:Graph)-[r:HAS_NODE]->(:Node) RETURN count(*) AS n",
    "features": "MATCH (f:Feature) RETURN count(*) AS n",
    "of_feature": "MATCH (:Node)-[r:OF_FEATURE]->(:Feature) RETURN count(*) AS n",
    "tags": "MATCH (:Graph)-[r:TAGGED]->(:Tag) RETURN count(*) AS n",
}


def counts(store) -> dict[str, int]:
    return {name: store.query(q)[0]["n"] for name, q in COUNTS.items()}


def expected_counts(graphs) -> dict[str, int]:
    fkeys = [g.feature_key(n) for g in graphs for n in g.nodes]
    return {
        "graphs": len(graphs), "nodes": sum(len(g.nodes) for g in graphs), "edges": sum(g.n_edges for g in graphs),
        "has_node": sum(len(g.nodes) for g in graphs), "features": len({k for k in fkeys if k}),
        "of_feature": sum(1 for k in fkeys if k), "tags": sum(len(g.tags) for g in graphs),
    }


def small(seed, **kw):
    return synthetic_graph(seed, n_nodes=120, n_edges=1500, n_feature_ids=300, **kw)


def edge_set(graph):
    return {(s.node_id, t.node_id, w) for s, t, w in graph.edges()}


def test_add_graphs_stores_exactly_the_graphs(store_uri):
    graphs = [small(i, tags={"set": "a"}) for i in range(3)]
    with open_store(store_uri) as store:
        assert store.add_graphs(graphs) == [True, True, True]
        assert counts(store) == expected_counts(graphs)
        assert all(store.has_graph(g.id) for g in graphs) and not store.has_graph("0" * 32)


def test_adding_again_adds_nothing_but_merges_new_tags(store_uri):
    graph = small(7, tags={"lang": "en"})
    with open_store(store_uri) as store:
        assert store.add_graph(graph) is True
        before = counts(store)
        again = small(7, tags={"lang": "en", "concept": "capital"})
        assert again.id == graph.id
        assert store.add_graph(again) is False
        repeat = [small(8, tags={"a": "1"}), small(8, tags={"b": "2"})]  # the same graph twice in a batch
        assert store.add_graphs(repeat) == [True, False]
        after = counts(store)
        assert store.get_graph(repeat[0].id).tags == {"a": "1", "b": "2"}
    assert after["edges"] == before["edges"] + small(8).n_edges
    assert after["graphs"] == 2 and after["tags"] == 4
    with open_store(store_uri, read_only=True) as store:
        assert store.get_graph(graph.id).tags == {"lang": "en", "concept": "capital"}


def test_get_graph_round_trip(store_uri):
    graph = small(3, tags={"k": "v"})
    graph.generator = {"name": "test", "version": "1"}
    graph.extra = {"qParams": {"pinnedIds": ["x"]}}
    graph.scores = {"replacement": 0.5}
    with open_store(store_uri) as store:
        store.add_graph(graph)
        back = store.get_graph(graph.id)
        with pytest.raises(GraphNotFoundError, match="no graph with id"):
            store.get_graph("f" * 32)
    assert back.id == graph.id
    assert {n.node_id: n for n in back.nodes} == {n.node_id: n for n in graph.nodes}
    assert edge_set(back) == edge_set(graph)
    for attr in ("prompt", "prompt_tokens", "model", "transcoder_set", "n_layers", "slug", "node_threshold",
                 "edge_threshold", "generator", "extra", "scores", "tags"):
        assert getattr(back, attr) == getattr(graph, attr), attr


def test_statement_path_matches_bulk_copy(tmp_path):
    """The UNWIND statements Neo4j uses, run on the embedded engine, store the same thing as COPY."""
    graphs = [small(i, tags={"t": str(i)}) for i in range(2)]
    stored = {}
    for bulk in (True, False):
        uri = str(tmp_path / f"bulk-{bulk}")
        with open_store(uri, bulk=bulk) as store:
            store.add_graphs(graphs[:1])
            store.add_graphs(graphs)                  # second batch: features partly known already
            stored[bulk] = (counts(store), [store.get_graph(g.id) for g in graphs],
                            store.query("MATCH (f:Feature) RETURN f.key AS k, f.layer AS l, f.feature AS f, "
                                        "f.label AS label ORDER BY k"))
            assert store.query("MATCH (n:Node)-[:OF_FEATURE]->(f:Feature) WHERE n.fkey <> f.key "
                               "RETURN count(*) AS n") == [{"n": 0}]
    assert stored[True][0] == stored[False][0] == expected_counts(graphs)
    assert [edge_set(g) for g in stored[True][1]] == [edge_set(g) for g in stored[False][1]]
    assert [g.tags for g in stored[False][1]] == [g.tags for g in graphs]
    assert stored[True][2] == stored[False][2]


def test_a_failing_graph_leaves_no_trace(store_uri, monkeypatch):
    """Embedded: the whole batch is one transaction. Neo4j: each graph is one transaction."""
    from circuit_atlas.store import embedded, neo4j, rows

    good, bad = small(1), small(2)

    def colliding(graphs, first_uid, **kw):                 # bad's nodes numbered over small(0)'s, as a
        return rows.graph_rows(graphs, 0 if any(g is bad for g in graphs) else first_uid, **kw)  # racing writer would
    for backend in (embedded, neo4j):
        monkeypatch.setattr(backend, "graph_rows", colliding)   # Node.uid is unique: the insert fails midway
    with open_store(store_uri) as store:
        store.add_graph(small(0))
        before = counts(store)
        with pytest.raises(StoreError):
            store.add_graphs([good, bad])
        if store.backend == "embedded":
            assert counts(store) == before and not store.has_graph(good.id)
            assert store.add_graph(good) is True
        assert not store.has_graph(bad.id)
        assert store.query("MATCH (n:Node) WHERE n.gid = $gid RETURN count(*) AS n", {"gid": bad.id}) == [{"n": 0}]
        assert counts(store) == expected_counts([small(0), good])


WRITES = [
    "CREATE (:Tag {id: 'x=y', key: 'x', value: 'y'})",
    "MERGE (t:Tag {id: 'x=y'})",
    "MATCH (g:Graph) SET g.slug = 'changed'",
    "MATCH (t:Tag) DELETE t",
    "MATCH (g:Graph) DETACH DELETE g",
]


@pytest.mark.parametrize("cypher", WRITES)
def test_query_refuses_writes(store_uri, cypher):
    with open_store(store_uri) as store:
        store.add_graph(small(1, tags={"a": "b"}))
        before = counts(store)
        with pytest.raises(ReadOnlyQueryError, match="read-only"):
            store.query(cypher)
        assert counts(store) == before
        assert store.query("MATCH (g:Graph) RETURN g.slug AS slug") == [{"slug": "synthetic-1"}]


def test_read_only_store_refuses_library_writes(store_uri):
    with open_store(store_uri) as store:
        store.add_graph(small(1))
    with open_store(store_uri, read_only=True) as store:
        with pytest.raises(ReadOnlyQueryError, match="opened read-only"):
            store.add_graph(small(2))
        with pytest.raises(ReadOnlyQueryError):
            store.query(WRITES[0])
        assert store.query(COUNTS["graphs"]) == [{"n": 1}]


def test_a_smuggled_second_statement_is_refused(store_uri):
    with open_store(store_uri) as store:
        store.add_graph(small(1))
        with pytest.raises(StoreError):
            store.query("MATCH (g:Graph) RETURN count(*) AS n; CREATE (:Tag {id: 'x=y', key: 'x', value: 'y'})")
        with pytest.raises(StoreError):
            store.query("COMMIT; CREATE (:Tag {id: 'x=y', key: 'x', value: 'y'})")
        assert store.query("MATCH (t:Tag) RETURN count(*) AS n") == [{"n": 0}]


def test_query_timeout_and_row_cap(store_uri):
    with open_store(store_uri) as store:
        store.add_graphs([small(i) for i in range(2)])
        n_nodes = store.query(COUNTS["nodes"])[0]["n"]
        assert len(store.query("MATCH (n:Node) RETURN n.uid AS uid", max_rows=n_nodes)) == n_nodes
        with pytest.raises(TooManyRowsError, match=f"more than {n_nodes - 1} rows"):
            store.query("MATCH (n:Node) RETURN n.uid AS uid", max_rows=n_nodes - 1)
        with pytest.raises(QueryTimeoutError, match="timed out"):   # 240^4 = 3.3e9 combinations: hours
            store.query("MATCH (a:Node), (b:Node), (c:Node), (d:Node) WHERE a.pos + b.pos + c.pos + d.pos < 0 "
                        "RETURN count(*) AS n", timeout_s=0.5)
        assert store.query(COUNTS["graphs"]) == [{"n": 2}]         # and the store answers again at once


def test_parameters_and_bad_cypher(store_uri):
    with open_store(store_uri) as store:
        graph = small(1)
        store.add_graph(graph)
        rows = store.query("MATCH (n:Node) WHERE n.gid = $gid AND n.layer IN $layers RETURN count(*) AS n",
                           {"gid": graph.id, "layers": [0, 1]})
        assert rows == [{"n": sum(1 for n in graph.nodes if n.layer in (0, 1))}]
        with pytest.raises(CypherError, match=r"\$unused given but not used"):   # issue 10: an error, not ignored
            store.query("MATCH (g:Graph) RETURN count(*) AS n", {"unused": 1})
        with pytest.raises(CypherError, match="Invalid input"):
            store.query("MATCH (n:Node RETURN n")


def _hold_store(uri: str) -> subprocess.Popen:
    """Another process that holds the store read-write until a line arrives on its stdin."""
    code = ("import sys; from circuit_atlas.store import open_store\n"
            "with open_store(sys.argv[1]):\n    print('held', flush=True); sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_embedded_lock_waits_then_names_the_problem(tmp_path):
    import threading

    uri = str(tmp_path / "atlas.db")
    with open_store(uri) as store:
        store.add_graph(small(1))
    holder = _hold_store(uri)
    try:
        start = time.monotonic()
        with pytest.raises(StoreLockedError, match="locked by another process"):
            with open_store(uri, read_only=True, lock_timeout_s=0.5):
                pass
        assert time.monotonic() - start >= 0.5                    # it waited its lock_timeout first
        answer = []

        def reader():                                             # waits for the lock; gets it once released
            with open_store(uri, read_only=True, lock_timeout_s=600) as store:
                answer.append(store.query(COUNTS["graphs"]))
        opener = threading.Thread(target=reader)
        opener.start()
        opener.join(timeout=1.0)
        assert opener.is_alive() and not answer                  # held: it cannot have opened, at any speed
        holder.stdin.write("release\n")
        holder.stdin.flush()
        opener.join(timeout=600)
        assert answer == [[{"n": 1}]]
    finally:
        holder.kill()
        holder.wait()


def test_a_store_with_another_schema_is_refused_untouched(tmp_path):
    import kuzu

    path = tmp_path / "old.db"
    db = kuzu.Database(str(path))                          # Node as an earlier version made it
    kuzu.Connection(db).execute("CREATE NODE TABLE Node(uid STRING, gid STRING, PRIMARY KEY(uid))")
    db.close()
    with pytest.raises(StoreError, match=r"another schema \(Node\.uid is STRING, expected INT64; "
                                         r"Node\.node_id is missing, expected STRING"):
        with open_store(str(path)):
            pass
    db = kuzu.Database(str(path))
    tables = [row[1] for row in kuzu.Connection(db).execute("CALL show_tables() RETURN *").get_all()]
    db.close()
    assert tables == ["Node"]                              # nothing was added to it
    with open_store(str(path), read_only=True):            # and the refused open released its lock
        pass


def test_a_store_from_before_the_neighbour_aggregates_is_refused(tmp_path):
    """Its graphs have no Neighbour rows: opening it read-write would create the table empty and
    feature-upstream / -downstream would silently leave those graphs out."""
    import kuzu

    path = tmp_path / "old.db"
    with open_store(str(path)) as store:
        store.add_graph(small(1))
    db = kuzu.Database(str(path))                          # as a version before the Neighbour table left it
    conn = kuzu.Connection(db)
    for table in ("HAS_UPSTREAM", "HAS_DOWNSTREAM", "Neighbour"):
        conn.execute(f"DROP TABLE {table}")
    db.close()
    with pytest.raises(StoreError, match="before the Neighbour aggregates"):
        with open_store(str(path)):
            pass
    with open_store(str(path), read_only=True) as store:   # untouched: still no Neighbour table
        assert store.query(COUNTS["graphs"]) == [{"n": 1}]
        with pytest.raises(StoreError, match="Neighbour"):
            store.query("MATCH (a:Neighbour) RETURN count(*) AS n")


def test_a_store_with_string_keyed_neighbour_rows_is_refused(tmp_path):
    """The first Neighbour layout (string keys, 2026-12-01 branch): its rows cannot be added to by
    integer key, so a read-write open refuses it in one line naming the table, before writing."""
    import kuzu

    path = tmp_path / "old.db"
    with open_store(str(path)) as store:
        store.add_graph(small(1))
    db = kuzu.Database(str(path))                          # as the string-keyed layout left it
    conn = kuzu.Connection(db)
    for table in ("HAS_UPSTREAM", "HAS_DOWNSTREAM", "Neighbour", "NeighbourEnd"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("CREATE NODE TABLE Neighbour(id STRING, fkey STRING, dir STRING, kind STRING, layer INT64, "
                 "nfkey STRING, token STRING, weight DOUBLE, abs_weight DOUBLE, n_edges INT64, n_graphs INT64, "
                 "PRIMARY KEY(id))")
    conn.execute("CREATE REL TABLE HAS_NEIGHBOUR(FROM Feature TO Neighbour)")
    db.close()
    with pytest.raises(StoreError, match=r"another schema \(Neighbour.id is STRING, expected INT64") as refused:
        with open_store(str(path)):
            pass
    assert "\n" not in str(refused.value)
    with open_store(str(path), read_only=True) as store:   # untouched: the old table, no NeighbourEnd
        assert store.query(COUNTS["graphs"]) == [{"n": 1}]
        with pytest.raises(StoreError, match="NeighbourEnd"):
            store.query("MATCH (e:NeighbourEnd) RETURN count(*) AS n")


def test_a_store_with_one_neighbour_link_type_is_refused(tmp_path):
    """The integer-keyed layout before the links by direction (main until 2026-12-02): one HAS_NEIGHBOUR
    type for both directions and NeighbourEnd keyed by its string. Its rows would be linked by neither
    HAS_UPSTREAM nor HAS_DOWNSTREAM, so the neighbour queries would miss them: a read-write open refuses
    it in one line naming both differences, before writing."""
    import kuzu

    path = tmp_path / "old.db"
    with open_store(str(path)) as store:
        store.add_graph(small(1))
    db = kuzu.Database(str(path))                          # as that layout left it
    conn = kuzu.Connection(db)
    for table in ("HAS_UPSTREAM", "HAS_DOWNSTREAM", "NeighbourEnd"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("CREATE NODE TABLE NeighbourEnd(key STRING, id INT64, kind STRING, layer INT64, fkey STRING, "
                 "token STRING, PRIMARY KEY(key))")
    conn.execute("CREATE REL TABLE HAS_NEIGHBOUR(FROM Feature TO Neighbour)")
    db.close()
    with pytest.raises(StoreError, match=r"another schema \(NeighbourEnd is keyed by key, expected id; "
                                         r"HAS_NEIGHBOUR is the older link") as refused:
        with open_store(str(path)):
            pass
    assert "\n" not in str(refused.value)
    with open_store(str(path), read_only=True) as store:   # untouched: no link tables by direction added
        assert store.query(COUNTS["graphs"]) == [{"n": 1}]
        with pytest.raises(StoreError, match="HAS_UPSTREAM"):
            store.query("MATCH ()-[r:HAS_UPSTREAM]->() RETURN count(*) AS n")


def test_same_process_opens_share_one_database(tmp_path):
    """A second open of the same path in one process must not drop the first one's file lock."""
    uri = str(tmp_path / "atlas.db")
    with open_store(uri) as writer:
        writer.add_graph(small(1))
        with open_store(uri, read_only=True) as reader:
            assert reader.query(COUNTS["graphs"]) == [{"n": 1}]
        engine = writer._backend.opts.engine
        other = subprocess.run([sys.executable, "-c", f"import {engine}, sys; {engine}.Database(sys.argv[1], read_only=True)",
                                uri], capture_output=True, text=True)
        assert other.returncode != 0 and "lock" in other.stderr   # still locked against other processes
        assert writer.add_graph(small(2)) is True


def test_feature_label_is_the_first_labelled_occurrence(store_uri):
    """A feature seen at several positions of a graph takes the first non-empty label of its occurrences
    (node order), never the empty label of an unlabelled one (issue 14). (Across graphs stored in
    separate transactions: test_feature_label_filled_by_a_later_graph.)"""
    graphs = [synthetic_graph(20, n_nodes=200, n_edges=1500, n_layers=4, n_feature_ids=40)]
    keys = [g.feature_key(n) for g in graphs for n in g.nodes]
    repeated = {k for k in keys if k and keys.count(k) >= 2}
    assert len(repeated) >= 10
    seen = {}
    for g in graphs:                      # first occurrence unlabelled, later ones labelled by position
        for n in g.nodes:
            k = g.feature_key(n)
            if k in repeated:
                n.label = "" if k not in seen else f"at {g.prompt[-1]}:{n.pos}"
                seen[k] = True
    want = {}
    for g in graphs:                      # plain Python: the first non-empty label, in order
        for n in g.nodes:
            k = g.feature_key(n)
            if k and n.label and k not in want:
                want[k] = n.label
    with open_store(store_uri) as store:
        store.add_graphs(graphs)
        got = {r["k"]: r["label"] for r in store.query("MATCH (f:Feature) RETURN f.key AS k, f.label AS label")}
    assert {k: got[k] for k in repeated} == {k: want[k] for k in repeated}
    assert all(got[k] == want.get(k, "") for k in got)


@pytest.mark.parametrize("store_uri, bulk", WRITE_PATHS, indirect=["store_uri"])
def test_feature_label_filled_by_a_later_graph(store_uri, bulk):
    """A feature first stored unlabelled takes the first non-empty label of a graph stored later, in a
    separate transaction; a label once stored is kept (issue 14). Planted: graph 0 labels only some
    features, graph 1 labels others, graph 2 labels every feature differently."""
    graphs = [synthetic_graph(40 + i, n_nodes=120, n_edges=400, n_layers=3, n_feature_ids=25) for i in range(3)]
    for i, g in enumerate(graphs):
        for n in g.nodes:
            if n.kind == "feature":
                labelled = (i == 0 and n.feature % 3 == 0) or (i == 1 and n.feature % 2 == 0) or i == 2
                n.label = f"graph {i} pos {n.pos}" if labelled else ""
    want = {}                             # plain Python: the first non-empty label, graph by graph, node by node
    for g in graphs:
        for n in g.nodes:
            k = g.feature_key(n)
            if k:
                if n.label and not want.get(k):
                    want[k] = n.label
                want.setdefault(k, "")
    filled = {k for k in want if want[k].startswith(("graph 1", "graph 2"))
              and any(g.feature_key(n) == k for n in graphs[0].nodes)}
    assert len(filled) >= 10              # the case under test: stored empty first, filled later
    options = {} if bulk is None else {"bulk": bulk}
    with open_store(store_uri, **options) as store:
        for g in graphs:                  # one transaction each
            store.add_graph(g)
        got = {r["k"]: r["label"] for r in store.query("MATCH (f:Feature) RETURN f.key AS k, f.label AS label")}
    assert got == want


def test_neo4j_import_features_take_the_first_nonempty_label_across_batches():
    """neo4j-admin's Feature rows (neo4j_import.summed_features over per-batch rows) label a feature as
    the Bolt path does: the first non-empty label over the batches, in order (planted as above)."""
    from circuit_atlas.store.neo4j_import import summed_features
    from circuit_atlas.store.rows import graph_rows

    graphs = [synthetic_graph(40 + i, n_nodes=120, n_edges=400, n_layers=3, n_feature_ids=25) for i in range(3)]
    for i, g in enumerate(graphs):
        for n in g.nodes:
            if n.kind == "feature":
                n.label = f"graph {i}" if (i == 1 and n.feature % 2 == 0) or i == 2 else ""
    want = {}
    for g in graphs:
        for n in g.nodes:
            if (k := g.feature_key(n)) and not want.get(k):
                want[k] = n.label
    assert sum(v == "graph 1" for v in want.values()) >= 5 and sum(v == "graph 2" for v in want.values()) >= 5
    table = summed_features([graph_rows([g], 10_000 * i).features for i, g in enumerate(graphs)])
    assert dict(zip(table["key"].to_pylist(), table["label"].to_pylist())) == want


def test_plain_value_turns_engine_numbers_into_python_ones_at_any_depth():
    """The embedded engine's 128-bit sums arrive as Decimal: whole ones become int, others float,
    inside lists and maps too; everything else is left as it is (mutation survivors, issue 14)."""
    from decimal import Decimal

    from circuit_atlas.store.rows import plain_value

    got = plain_value({"n": Decimal(7), "x": [Decimal("2.5"), {"deep": Decimal("-3")}, "s", None], "t": (1, 2)})
    assert got == {"n": 7, "x": [2.5, {"deep": -3}, "s", None], "t": (1, 2)}
    assert [type(v) for v in (got["n"], got["x"][0], got["x"][1]["deep"])] == [int, float, int]
    assert plain_value("text") == "text" and plain_value(None) is None and plain_value([]) == []


def test_plain_rows_without_aggregates_leave_them_null():
    """bench/ingest.py's "before" rows (with_aggregates=False): the same graphs, nodes, edges and
    features, with no Feature aggregate, no Graph.features / n_paths and no strong paths."""
    from circuit_atlas.store.aggregates import FEATURE_AGGREGATES
    from circuit_atlas.store.rows import graph_rows

    graphs = [small(1), small(2)]
    full, bare = graph_rows(graphs, 0), graph_rows(graphs, 0, with_aggregates=False)
    assert full.paths.num_rows > 0 and bare.paths.num_rows == 0 and bare.paths.schema == full.paths.schema
    assert bare.graphs["features"].null_count == bare.graphs["n_paths"].null_count == len(graphs)
    assert all(bare.features[a].null_count == bare.features.num_rows > 0 for a in FEATURE_AGGREGATES)
    assert bare.nodes.equals(full.nodes) and bare.effects.equals(full.effects)
    assert bare.features.select(["key", "label"]).equals(full.features.select(["key", "label"]))


def test_plain_rows_of_no_graph_are_empty_tables():
    from circuit_atlas.store.rows import graph_rows

    for with_aggregates in (True, False):
        rows = graph_rows([], 0, with_aggregates=with_aggregates)
        assert [t.num_rows for t in (rows.graphs, rows.nodes, rows.features, rows.has_node, rows.of_feature,
                                     rows.effects, rows.paths)] == [0] * 7 and rows.tags == []


def test_a_store_whose_feature_links_carry_no_copies_is_refused(tmp_path):
    """A store made before OF_FEATURE carried its occurrence's gid, activation and influence: one clear line."""
    import kuzu

    from circuit_atlas.store import schema

    path = tmp_path / "before.db"
    db = kuzu.Database(str(path))
    conn = kuzu.Connection(db)
    for ddl in schema.embedded_ddl():
        if "OF_FEATURE" in ddl:
            ddl = "CREATE REL TABLE IF NOT EXISTS OF_FEATURE(FROM Node TO Feature)"   # as before
        conn.execute(ddl)
    db.close()
    with pytest.raises(StoreError, match=r"another schema \(OF_FEATURE\.gid is missing, expected STRING; "
                                         r"OF_FEATURE\.activation is missing, expected DOUBLE; "
                                         r"OF_FEATURE\.influence is missing, expected DOUBLE\)") as e:
        with open_store(str(path)):
            pass
    assert "\n" not in str(e.value)
