"""`circuit-atlas delete | tag | untag`: select graphs by id, slug, tag or query; change nothing on a bad selector."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from circuit_atlas.cli import main
from circuit_atlas.ingest.formats import read_graph_file
from circuit_atlas.store import open_store

REAL = Path(__file__).parent / "fixtures" / "formats" / "real"


@pytest.fixture
def store(tmp_path):
    graphs = [read_graph_file(p) for p in sorted(REAL.glob("*.json.gz"))]
    for i, g in enumerate(graphs):
        g.tags = {"set": "even" if i % 2 == 0 else "odd"}
    path = str(tmp_path / "atlas.db")
    with open_store(path) as s:
        s.add_graphs(graphs)
    return path, graphs


def cli(path, *args):
    return CliRunner().invoke(main, ["--store", path, *args])


def stored(path) -> dict[str, set[str]]:
    with open_store(path, read_only=True) as s:
        rows = s.query("MATCH (g:Graph) OPTIONAL MATCH (g)-[:TAGGED]->(t:Tag) RETURN g.slug AS slug, collect(t.id) AS tags")
    return {r["slug"]: set(r["tags"]) for r in rows}


def test_delete_by_slug_tag_and_query(store):
    path, graphs = store
    before = stored(path)
    dry = cli(path, "delete", "set=odd", "--dry-run")
    assert dry.exit_code == 0 and "nothing deleted" in dry.output
    assert stored(path) == before
    odd = {g.slug for g in graphs if g.tags["set"] == "odd"}
    out = cli(path, "delete", "set=odd")
    assert out.exit_code == 0, out.output
    assert f"deleted {len(odd)} graphs" in out.output
    assert set(stored(path)) == set(before) - odd
    assert cli(path, "delete", "dallas-austin-llamma").exit_code == 0
    small = cli(path, "delete", "--cypher", "MATCH (g:Graph) WHERE g.n_edges < $n RETURN g.id AS gid", "-p", "n=300")
    assert small.exit_code == 0, small.output
    left = {g.slug for g in graphs if g.slug not in odd and g.slug != "dallas-austin-llamma" and g.n_edges >= 300}
    assert set(stored(path)) == left


def test_a_selector_that_names_nothing_changes_nothing(store):
    path, graphs = store
    before = stored(path)
    out = cli(path, "delete", graphs[0].slug, "no-such-graph")
    assert out.exit_code == 1 and "'no-such-graph' names no graph" in out.output
    assert stored(path) == before
    assert cli(path, "delete").exit_code == 2


def test_tag_and_untag(store):
    path, graphs = store
    out = cli(path, "tag", "set=even", "--add", "split=test", "-a", "lang=en")
    assert out.exit_code == 0 and "tagged 3 graphs" in out.output
    tags = stored(path)
    assert all({"split=test", "lang=en"} <= tags[g.slug] for g in graphs if g.tags["set"] == "even")
    assert cli(path, "untag", "split=test", "--remove", "split").exit_code == 0
    assert cli(path, "untag", graphs[0].slug, "-r", "lang=en").exit_code == 0
    tags = stored(path)
    assert all("split=test" not in t for t in tags.values())
    assert tags[graphs[0].slug] == {"set=even"}
    with open_store(path, read_only=True) as s:
        assert not s.query("MATCH (t:Tag {id: 'split=test'}) RETURN t.id"), "an unused tag was left behind"
    assert cli(path, "tag", "set=even", "--add", "nokey").exit_code == 2
