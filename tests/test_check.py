"""`circuit-atlas check` finds damage the engine does not notice: bytes changed in the store file, and
each kind of logical damage (wrong counts, dangling nodes, edges across graphs, NaN weights)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from circuit_atlas.ingest import ingest_paths
from circuit_atlas.ingest.formats import read_graph_file
from circuit_atlas.store import open_store
from circuit_atlas.store.check import check_store
from tests.conftest import REPO

FIXTURES = sorted((REPO / "tests/fixtures/formats/real").glob("*.json.gz"))


def check_cli(store: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", store, "check", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


@pytest.fixture
def stored(store_uri) -> tuple[str, list]:
    """The fixture graphs in a store, on each backend (the check's statements are portable Cypher)."""
    report = ingest_paths(store_uri, FIXTURES, log=lambda line: None)
    assert report.ok
    return store_uri, [read_graph_file(f) for f in FIXTURES]


def test_a_sound_store_of_one_graph_passes_in_the_singular(tmp_path):
    graph = read_graph_file(FIXTURES[0])
    with open_store(str(tmp_path / "one.db")) as store:
        store.add_graph(graph)
        summary = check_store(store).summary()
    assert summary.endswith(f": 1 graph, {len(graph.nodes):,} nodes, {graph.n_edges:,} edges checked "
                            "(1 content hash recomputed): no problems.")


def test_a_sound_store_passes(stored, cli_env):
    uri, graphs = stored
    result = check_cli(uri, cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    edges = sum(g.n_edges for g in graphs)
    assert result.stdout.splitlines() == [f"{uri}: {len(graphs)} graphs, {sum(len(g.nodes) for g in graphs):,} nodes, "
                                          f"{edges:,} edges checked ({len(graphs)} content hashes recomputed): no problems."]


def _corrupt_weights(path: Path, graph, edges: list[int]) -> None:
    """Overwrite the weights of `edges` of `graph` with NaN in the store file. The engine keeps each edge
    property twice, in its forward and its backward adjacency lists (in an order that varies), so each
    weight, random and so unique in the file, is found by value: exactly twice."""
    data = bytearray(path.read_bytes())
    nan = np.float32(np.nan).tobytes()
    for k in edges:
        value = graph.edge_weight[k].tobytes()
        assert data.count(value) == 2, "the engine no longer stores each weight twice, raw: update this test"
        for _ in range(2):
            at = data.index(value)
            data[at:at + 4] = nan
    path.write_bytes(bytes(data))


def test_bytes_changed_in_the_store_file_are_found(tmp_path, cli_env):
    """The engine reads the damage back without complaint (NaN weights); check names the graph."""
    from circuit_atlas.ingest.write import write_graph_json

    victim = read_graph_file(FIXTURES[-2])
    victim.edge_weight = np.random.default_rng(7).standard_normal(victim.n_edges).astype(np.float32) * 3
    uri = str(tmp_path / "atlas.db")
    assert ingest_paths(uri, [*FIXTURES, write_graph_json(victim, tmp_path / "victim.json")],
                        log=lambda line: None).new == len(FIXTURES) + 1
    assert check_cli(uri, cli_env, "-q").returncode == 0
    _corrupt_weights(Path(uri), victim, [0, 7, 100])
    with open_store(uri, read_only=True) as store:    # what a user sees: no error, NaN in answers
        nan = store.query("MATCH (a:Node)-[e:EFFECT]->() WHERE a.gid = $g AND e.weight <> e.weight "
                          "RETURN count(e) AS n", {"g": victim.id})
        assert nan == [{"n": 3}]
    result = check_cli(uri, cli_env, "-q")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[-1].endswith(": 2 problems."), lines
    assert lines[0] == f"graph {victim.id}: 3 EFFECT edges with a NaN, infinite or missing weight"
    assert re.fullmatch(f"graph {victim.id}: its content hash is now [0-9a-f]{{32}}: its nodes or edges changed "
                        "after it was stored", lines[1])


# (statement that damages the store, the problem line it must cause; {gid} is the damaged graph)
DAMAGE = {
    "nan-weight": ("MATCH (a:Node {gid: $gid})-[e:EFFECT]->() WITH e LIMIT 1 SET e.weight = $nan",
                   ["graph {gid}: 1 EFFECT edges with a NaN, infinite or missing weight", "graph {gid}: its content hash"]),
    "lost-edge": ("MATCH (a:Node {gid: $gid})-[e:EFFECT]->() WITH e LIMIT 1 DELETE e",
                  ["graph {gid}: holds {nodes} nodes and {edges_less} edges, recorded {nodes} and {edges}",
                   "graph {gid}: its content hash"]),
    "changed-activation": ("MATCH (n:Node {gid: $gid}) WHERE n.kind = 'feature' WITH n LIMIT 1 "
                           "SET n.activation = n.activation + 1", ["graph {gid}: its content hash"]),
    "dangling-node": ("CREATE (:Node {uid: 999999, gid: $gid, node_id: 'x', kind: 'feature', layer: 0, pos: 0})",
                      ["graph {gid}: 1 nodes held by no graph, or by several"]),
    "wrong-gid": ("MATCH (n:Node {gid: $gid}) WITH n LIMIT 1 SET n.gid = 'elsewhere'",
                  ["graph {gid}: 1 nodes whose gid is not their graph's id"]),
    "cross-edge": ("MATCH (a:Node {gid: $gid}), (b:Node {gid: $other}) WHERE a.kind = 'feature' AND b.kind = 'logit' "
                   "WITH a, b LIMIT 1 CREATE (a)-[:EFFECT {weight: 1.0}]->(b)",
                   ["graph {gid}: holds {nodes} nodes and {edges_more} edges", "graph {gid}: 1 EFFECT edges to a node "
                    "of another graph", "graph {gid}: (cannot be read back|its content hash)"]),
}


@pytest.mark.parametrize("case", DAMAGE, ids=list(DAMAGE))
def test_each_kind_of_damage_is_reported(stored, case):
    uri, graphs = stored
    victim, other = graphs[0], graphs[1]
    cypher, expected = DAMAGE[case]
    with open_store(uri) as store:
        assert check_store(store).ok
        store.execute(cypher, {"gid": victim.id, "other": other.id, "nan": float("nan")})
        report = check_store(store)
    fill = dict(gid=victim.id, nodes=len(victim.nodes), edges=victim.n_edges, edges_less=victim.n_edges - 1,
                edges_more=victim.n_edges + 1)
    assert len(report.problems) == len(expected), report.problems
    for start in (e.format(**fill) for e in expected):
        assert sum(bool(re.match(start, line)) for line in report.problems) == 1, (start, report.problems)
    assert all(victim.id in line for line in report.problems)      # no other graph is blamed
