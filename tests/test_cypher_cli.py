"""`circuit-atlas cypher`: output formats, parameters, and the limits user queries run under."""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from circuit_atlas.cli import main
from circuit_atlas.cli.output import format_rows, parse_param
from circuit_atlas.store import open_store
from circuit_atlas.synthetic import synthetic_graph
from tests.conftest import REPO


@pytest.fixture
def filled_store(store_uri):
    graphs = [synthetic_graph(i, n_nodes=100, n_edges=800, n_feature_ids=200, tags={"lang": lang})
              for i, lang in enumerate(["en", "fr", "en"])]
    with open_store(store_uri) as store:
        store.add_graphs(graphs)
    return store_uri, graphs


def cypher(store_uri, *args):
    return CliRunner().invoke(main, ["--store", store_uri, "cypher", *args])


def test_json_output_is_one_array_of_row_objects(filled_store):
    uri, graphs = filled_store
    result = cypher(uri, "MATCH (g:Graph)-[:TAGGED]->(t:Tag {key: 'lang'}) RETURN t.value AS lang, count(*) AS n "
                         "ORDER BY lang", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"lang": "en", "n": 2}, {"lang": "fr", "n": 1}]


def test_csv_and_table_output(filled_store):
    uri, graphs = filled_store
    query = "MATCH (g:Graph) RETURN g.slug AS slug, g.n_edges AS edges ORDER BY slug"
    expected = sorted((g.slug, g.n_edges) for g in graphs)
    out = cypher(uri, query, "--format", "csv").output
    assert list(csv.reader(io.StringIO(out))) == [["slug", "edges"]] + [[s, str(e)] for s, e in expected]
    table = cypher(uri, query).output.splitlines()
    assert table[0].split() == ["slug", "edges"] and table[-1] == "(3 rows)"
    assert [line.split() for line in table[2:-1]] == [[s, str(e)] for s, e in expected]


def test_parameters_are_typed(filled_store):
    uri, graphs = filled_store
    g = graphs[1]
    result = cypher(uri, "MATCH (n:Node) WHERE n.gid = $gid AND n.layer IN $layers AND n.pos >= $pos "
                         "RETURN count(*) AS n", "-p", f"gid={g.id}", "-p", "layers=[0, 1, 2]", "-p", "pos=3",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    expected = sum(1 for n in g.nodes if n.layer in (0, 1, 2) and n.pos >= 3)
    assert json.loads(result.output) == [{"n": expected}]
    assert parse_param("x=1.5") == ("x", 1.5) and parse_param("x=true") == ("x", True)
    assert parse_param('x="42"') == ("x", "42") and parse_param("x=a=b") == ("x", "a=b")


@pytest.mark.parametrize("raw", ["1e400", "-1e400", "[1, 1e999]", '{"a": -2e308}'])
def test_a_number_beyond_float_range_is_refused_in_one_line(filled_store, raw):
    uri, _ = filled_store
    result = cypher(uri, "RETURN $t AS t", "-p", f"t={raw}")
    assert result.exit_code != 0 and "float range" in result.output, result.output
    assert "Infinity" not in result.output and "Traceback" not in result.output


def test_an_empty_list_parameter_returned_as_is(filled_store):
    """Neo4j returns []; the embedded engine cannot type an empty list there, and the error says what to change."""
    uri, _ = filled_store
    result = cypher(uri, "RETURN $t AS t", "-p", "t=[]", "--format", "json")
    if uri.startswith("bolt"):
        assert result.exit_code == 0 and json.loads(result.output) == [{"t": []}], result.output
    else:
        assert result.exit_code == 1 and "empty list" in result.output and "Traceback" not in result.output
    counted = cypher(uri, "MATCH (g:Graph) WHERE g.slug IN $t RETURN count(*) AS n", "-p", "t=[]", "--format", "json")
    assert counted.exit_code == 0 and json.loads(counted.output) == [{"n": 0}], counted.output


@pytest.mark.parametrize("write", ["CREATE (:Tag {id: 'a=b', key: 'a', value: 'b'})", "MATCH (g:Graph) SET g.slug = 'x'",
                                   "MATCH (g:Graph) DETACH DELETE g", "MERGE (:Tag {id: 'a=b'})"])
def test_writes_are_refused(filled_store, write):
    uri, graphs = filled_store
    result = cypher(uri, write)
    assert result.exit_code == 1 and "read-only" in result.output
    with open_store(uri, read_only=True) as store:
        assert store.query("MATCH (g:Graph) RETURN count(*) AS n") == [{"n": len(graphs)}]
        assert store.query("MATCH (t:Tag) RETURN count(*) AS n") == [{"n": 2}]


def test_limits_and_bad_cypher(filled_store):
    uri, graphs = filled_store
    assert "more than 5 rows" in cypher(uri, "MATCH (n:Node) RETURN n.uid", "--max-rows", "5").output
    slow = "MATCH (a:Node), (b:Node), (c:Node), (d:Node) WHERE a.pos + b.pos + c.pos + d.pos < 0 RETURN count(*)"
    result = cypher(uri, slow, "--timeout", "0.5")
    assert result.exit_code == 1 and "timed out" in result.output
    result = cypher(uri, "MATCH (n:Node RETURN n")
    assert result.exit_code == 1 and "Invalid input" in result.output


def test_a_syntax_error_is_one_line_naming_where_it_is(filled_store):
    """Both engines draw the bad line with a caret under it; the error stays one line that still says
    where the fault is and shows the query (its spaces kept)."""
    uri, graphs = filled_store
    result = cypher(uri, "MATCH (n:Node)\nWHERE n.token = ' Austin' AND\nRETURN n LIMIT 2")
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Invalid input" in result.output
    assert re.search(r"\(line:? 3\b", result.output), result.output    # embedded "(line: 3, …", Neo4j "(line 3, …"
    assert "in query: MATCH (n:Node) WHERE n.token = ' Austin' AND RETURN n LIMIT 2" in result.output


def test_runs_as_a_subprocess(filled_store, cli_env):
    uri, graphs = filled_store
    out = subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", uri, "cypher",
                          "MATCH (g:Graph) RETURN count(*) AS graphs", "--format", "json"],
                         capture_output=True, text=True, env=cli_env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"graphs": 3}]


def test_format_rows_empty_and_nested():
    assert format_rows([], "json") == "[]"
    assert format_rows([], "table") == "(no rows)"
    assert json.loads(format_rows([{"a": [1, 2], "b": {"c": None}}], "json")) == [{"a": [1, 2], "b": {"c": None}}]
    assert format_rows([{"a": [1, 2]}], "csv") == 'a\n"[1, 2]"'
